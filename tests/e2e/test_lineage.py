"""Lineage and events of `artreg server`, as a team uses them: a chain of runs logged through the SDK,
its graph asked for both ways, drawn by `artreg lineage`, and every event posted to a webhook."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from artreg.client import Artifact, Registry
from tests.support.server import ARTREG, RunningServer

CHAIN_NODES = {"iris@1.0.0", "run:train-1", "resnet@1.0.0", "run:eval-1", "scores@1.0.0"}
CHAIN_EDGES = {
    ("run:train-1", "used", "iris@1.0.0"),
    ("run:train-1", "produced", "resnet@1.0.0"),
    ("run:eval-1", "used", "resnet@1.0.0"),
    ("run:eval-1", "produced", "scores@1.0.0"),
}


class Hook:
    """A webhook endpoint on loopback that is down for its first request, then keeps what it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self.arrived = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with hook.arrived:
                    if not hook.refused:
                        hook.refused += 1
                        self.send_response(503)
                    else:
                        hook.received.append(body)
                        self.send_response(204)
                    hook.arrived.notify_all()
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) >= count, timeout_s)
            return list(self.received)


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    yield endpoint
    endpoint.server.shutdown()


@pytest.fixture
def served(tmp_path: Path, hook: Hook) -> Iterator[RunningServer]:
    """`artreg server --webhook URL` (given as ARTREG_WEBHOOK)."""
    running = RunningServer(tmp_path / "data")
    running.env["ARTREG_WEBHOOK"] = hook.url
    running.start()
    yield running
    running.stop()


def log_chain(reg: Registry, tmp_path: Path) -> None:
    """A dataset; a training run that declares it as its input and logs a model; an evaluation run that
    uses the model (recorded on its own) and logs metrics."""
    for name in ("iris.csv", "model.pt", "scores.json"):
        (tmp_path / name).write_text(f"the bytes of {name}")
    dataset = reg.log_artifact(Artifact("iris", type="dataset").add(tmp_path / "iris.csv"))
    reg.log_artifact(
        Artifact("resnet", type="model").add(tmp_path / "model.pt"),
        run_id="train-1",
        pipeline="train",
        step="fit",
        inputs=[dataset],
    )
    reg.use_artifact("resnet@latest", run_id="eval-1", pipeline="eval")
    reg.log_artifact(Artifact("scores", type="metrics").add(tmp_path / "scores.json"), run_id="eval-1")


def shape(graph: Any) -> tuple[set[str], set[tuple[str, str, str]]]:
    return {n.id for n in graph.nodes}, {(e.from_, e.kind, e.to) for e in graph.edges}


def test_a_chain_of_runs_answers_its_lineage_both_ways(served: RunningServer, hook: Hook, tmp_path: Path) -> None:
    # Given dataset -> training run -> model -> evaluation run -> metrics, logged through the SDK
    reg = Registry(served.url, "vision", progress=False, cache=False)
    log_chain(reg, tmp_path)

    # When the lineage is asked for from each end, and from the middle
    upstream = reg.lineage("scores@1.0.0", direction="upstream")
    downstream = reg.lineage("iris", direction="downstream")
    both = reg.lineage("resnet", "latest")
    # Then each answers exactly that graph
    assert shape(upstream) == shape(downstream) == shape(both) == (CHAIN_NODES, CHAIN_EDGES)
    assert (upstream.root, downstream.root, both.root) == ("scores@1.0.0", "iris@1.0.0", "resnet@1.0.0")
    # And one level stops at the neighbouring runs' versions
    assert {n.id for n in reg.lineage("scores", direction="upstream", depth=1).nodes} == {
        "scores@1.0.0",
        "run:eval-1",
        "resnet@1.0.0",
    }
    # And each run says what it used and produced
    assert reg.run("train-1").model_dump() == {
        "run_id": "train-1",
        "produced": ["resnet@1.0.0"],
        "used": ["iris@1.0.0"],
        "next_cursor": None,
    }

    # When `artreg lineage --format mermaid` draws the metrics' history
    drawn = subprocess.run(
        [ARTREG, "lineage", "scores@1.0.0", "--upstream", "--format", "mermaid"],
        env={**served.env, "ARTREG_URL": served.url, "ARTREG_PROJECT": "vision"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    # Then it is a Mermaid flowchart of the five nodes and the four edges, data flowing left to right
    assert drawn[0] == "flowchart LR"
    nodes = [re.fullmatch(r'    (n\d+)(?:\["(.+)"\]|\(\["(.+)"\]\))', line) for line in drawn[1:6]]
    ids = {(m[2] or m[3]): m[1] for m in nodes if m}
    assert set(ids) == {"iris@1.0.0", "run train-1 (train/fit)", "resnet@1.0.0", "run eval-1 (eval)", "scores@1.0.0"}
    run_train, run_eval = ids["run train-1 (train/fit)"], ids["run eval-1 (eval)"]
    assert sorted(drawn[6:10]) == sorted(
        [
            f"    {ids['iris@1.0.0']} -->|used by| {run_train}",
            f"    {run_train} -->|produced| {ids['resnet@1.0.0']}",
            f"    {ids['resnet@1.0.0']} -->|used by| {run_eval}",
            f"    {run_eval} -->|produced| {ids['scores@1.0.0']}",
        ]
    )
    assert drawn[10] == f"    style {ids['scores@1.0.0']} stroke-width:3px"

    # And the webhook got every event once it answered, as EventBridge would deliver it
    received = hook.wait_for(7)
    assert hook.refused == 1
    kinds = sorted(e["detail-type"] for e in received)
    assert kinds == ["AliasMoved"] * 3 + ["ArtifactVersionCommitted"] * 3 + ["ArtifactVersionUsed"]
    assert len({e["id"] for e in received}) == len(received) == 7
    for event in received:
        document = json.loads(
            (resources.files("artreg.events") / "schemas" / f"{event['detail-type']}.json").read_text()
        )
        jsonschema.Draft202012Validator(document).validate(event)
        assert event["source"] == "artreg"
        assert event["id"] == event["detail"]["event_id"]
    (model,) = [e["detail"] for e in received if e["detail"].get("name") == "resnet" and "producer" in e["detail"]]
    assert model["producer"]["inputs"] == ["iris@1.0.0"]


def test_lineage_survives_a_restart(served: RunningServer, tmp_path: Path) -> None:
    # Given a chain logged, and the server restarted on the same data
    log_chain(Registry(served.url, "vision", progress=False, cache=False), tmp_path)
    served.stop()
    served.start()
    # Then the graph is all there
    reg = Registry(served.url, "vision", progress=False, cache=False)
    assert shape(reg.lineage("resnet@1.0.0")) == (CHAIN_NODES, CHAIN_EDGES)
