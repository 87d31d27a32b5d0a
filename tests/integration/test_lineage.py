"""Lineage on both back ends: a producer's inputs resolved at commit, edges recorded once, and the graph
walked a bounded number of runs away with a bounded fan-out that pages."""

from __future__ import annotations

from typing import Any

import pytest

from artreg import events
from artreg.model.errors import Invalid, NotFound
from artreg.model.wire import MoveAlias, VersionRecord
from artreg.registry.lineage import LineageRecorder
from artreg.registry.records import LineageEdge
from tests.conftest import Backend

P = "vision"


def log(backend: Backend, name: str, data: bytes, **request: Any) -> VersionRecord:
    return backend.log(P, name, {"data.bin": data}, **request).record


def edge(run_id: str, kind: str, ref: str) -> LineageEdge:
    name, _, version = ref.partition("@")
    return LineageEdge.model_validate({"project": P, "run_id": run_id, "kind": kind, "name": name, "version": version})


def ids(graph: Any) -> set[str]:
    return {n.id for n in graph.nodes}


# ---------------------------------------------------------------- inputs, resolved at commit


def test_inputs_are_resolved_to_versions_at_commit(backend: Backend) -> None:
    # Given iris 1.0.0 held by stable, and 2.0.0, the latest
    log(backend, "iris", b"1", type="dataset", aliases=["stable"])
    log(backend, "iris", b"2", type="dataset")
    # When a model is logged by a run that used iris@stable, iris@2.0.0 and plain iris (latest)
    producer = {"run_id": "train-1", "inputs": ["iris@stable", "iris@2.0.0", "iris"]}
    model = log(backend, "resnet", b"w", type="model", producer=producer)
    # Then its record names the versions they were then, each once
    assert model.producer is not None
    assert model.producer.inputs == ["iris@1.0.0", "iris@2.0.0"]
    # And they stay so when the alias moves on
    backend.registry.move_alias(P, "iris", "stable", MoveAlias(version="2.0.0"))
    again = backend.registry.resolve(P, "resnet", "1.0.0")
    assert again.producer is not None
    assert again.producer.inputs == ["iris@1.0.0", "iris@2.0.0"]


def test_an_input_that_names_no_version_is_refused(backend: Backend) -> None:
    log(backend, "iris", b"1", type="dataset")
    # An input that is not NAME@VERSION or NAME@ALIAS is refused before anything is written
    with pytest.raises(Invalid) as malformed:
        log(backend, "resnet", b"w", producer={"run_id": "r", "inputs": ["iris@Not An Alias"]})
    assert malformed.value.details["field"] == "producer.inputs"
    # And one that resolves to nothing is refused at commit, which then commits nothing
    for ref in ("iris@staging", "iris@9.0.0", "nothing@1.0.0"):
        with pytest.raises(Invalid):
            log(backend, "resnet", b"w", producer={"run_id": "r", "inputs": [ref]})
    assert backend.registry.store.get_head(P, "resnet") is None


# ---------------------------------------------------------------- recording


def test_an_event_recorded_twice_makes_one_edge(backend: Backend) -> None:
    # Given the commit event of a model trained on iris 1.0.0, and the usage of it by an evaluation
    log(backend, "iris", b"1", type="dataset")
    log(backend, "resnet", b"w", type="model", producer={"run_id": "train-1", "inputs": ["iris@1.0.0"]})
    stored = backend.registry.store.get_version(P, "resnet", "1.0.0")
    assert stored is not None
    commit = events.committed(stored)
    recorder = LineageRecorder(backend.registry.store)
    # When each is recorded twice
    assert recorder.record(commit.detail_type, commit.detail) == 2
    assert recorder.record(commit.detail_type, commit.detail) == 0
    # Then the run produced the model and used the dataset, once each
    assert backend.registry.run(P, "train-1").model_dump() == {
        "run_id": "train-1",
        "produced": ["resnet@1.0.0"],
        "used": ["iris@1.0.0"],
        "next_cursor": None,
    }
    # And the events that make no edge are ignored
    assert recorder.record(events.ALIAS_MOVED, {"project": P, "alias": "latest"}) == 0


def test_an_unknown_run_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        backend.registry.run(P, "nobody")


# ---------------------------------------------------------------- walking the graph


def chain(backend: Backend, length: int) -> list[str]:
    """v0 -> run-1 -> v1 -> run-2 -> ... -> v{length}: each run used the version before and produced the next."""
    refs = [f"v{i}@1.0.0" for i in range(length + 1)]
    for i, ref in enumerate(refs):
        log(backend, ref.partition("@")[0], f"{i}".encode())
    for i in range(1, length + 1):
        backend.registry.store.put_edge(edge(f"run-{i}", "used", refs[i - 1]))
        backend.registry.store.put_edge(edge(f"run-{i}", "produced", refs[i]))
    return refs


def test_a_lineage_query_goes_depth_runs_away(backend: Backend) -> None:
    refs = chain(backend, 4)
    registry = backend.registry
    # Downstream of v0: three runs away by default, two when asked
    assert ids(registry.lineage(P, "v0", "1.0.0", direction="downstream")) == {
        *refs[:4],
        "run:run-1",
        "run:run-2",
        "run:run-3",
    }
    assert ids(registry.lineage(P, "v0", "latest", direction="downstream", depth=2)) == {
        *refs[:3],
        "run:run-1",
        "run:run-2",
    }
    # Upstream of v4, one run away: its run and what that run used
    upstream = registry.lineage(P, "v4", "1.0.0", direction="upstream", depth=1)
    assert ids(upstream) == {"v4@1.0.0", "run:run-4", "v3@1.0.0"}
    assert {(e.from_, e.kind, e.to) for e in upstream.edges} == {
        ("run:run-4", "produced", "v4@1.0.0"),
        ("run:run-4", "used", "v3@1.0.0"),
    }
    # Both ways from the middle, and nothing further than asked
    both = registry.lineage(P, "v2", "1.0.0", depth=1)
    assert ids(both) == {"v1@1.0.0", "run:run-2", "v2@1.0.0", "run:run-3", "v3@1.0.0"}
    assert both.root == "v2@1.0.0"
    assert not any(n.truncated for n in both.nodes)
    # And the depth is bounded
    for depth in (0, 11):
        with pytest.raises(Invalid):
            registry.lineage(P, "v2", "1.0.0", depth=depth)
    with pytest.raises(Invalid):
        registry.lineage(P, "v2", "1.0.0", direction="sideways")


def test_the_fan_out_is_bounded_and_pages_with_a_cursor(backend: Backend) -> None:
    # Given a dataset used by five runs, one of which produced three versions
    log(backend, "iris", b"1")
    store = backend.registry.store
    for i in range(5):
        store.put_edge(edge(f"run-{i}", "used", "iris@1.0.0"))
    for i in range(3):
        store.put_edge(edge("run-0", "produced", f"out{i}@1.0.0"))
    # When its downstream is asked for two neighbours a node
    first = backend.registry.lineage(P, "iris", "1.0.0", direction="downstream", limit=2)
    # Then two runs come, the dataset and the busy run say there is more, and a cursor leads on
    assert {n.id for n in first.nodes if n.kind == "run"} == {"run:run-0", "run:run-1"}
    truncated = {n.id for n in first.nodes if n.truncated}
    assert truncated == {"iris@1.0.0", "run:run-0"}
    assert first.next_cursor
    runs = {n.id for n in first.nodes if n.kind == "run"}
    cursor: str | None = first.next_cursor
    while cursor:
        page = backend.registry.lineage(P, "iris", "1.0.0", direction="downstream", limit=2, cursor=cursor)
        runs |= {n.id for n in page.nodes if n.kind == "run"}
        cursor = page.next_cursor
    assert runs == {f"run:run-{i}" for i in range(5)}
    # And the run itself pages through all it produced and used
    page = backend.registry.run(P, "run-0", limit=2)
    assert page.next_cursor
    rest = backend.registry.run(P, "run-0", limit=2, cursor=page.next_cursor)
    assert sorted(page.produced + rest.produced) == ["out0@1.0.0", "out1@1.0.0", "out2@1.0.0"]
    assert page.used + rest.used == ["iris@1.0.0"]


def test_an_unresolved_input_of_an_older_commit_event_makes_no_edge(backend: Backend) -> None:
    # Given a commit event written before inputs were resolved at commit (an outbox row of an older server)
    log(backend, "resnet", b"w")
    stored = backend.registry.store.get_version(P, "resnet", "1.0.0")
    assert stored is not None
    detail = events.committed(stored).detail
    detail["producer"] = {"run_id": "train-0", "pipeline": None, "step": None, "inputs": ["iris@production"]}
    # When it is recorded
    made = LineageRecorder(backend.registry.store).record(events.COMMITTED, detail)
    # Then the run produced the version, and the input that names no version is left out, not a failure
    assert made == 1
    assert backend.registry.run(P, "train-0").used == []
