"""`artreg lineage` with a fake registry, and the graph as a tree, Mermaid and Graphviz text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from artreg import cli
from artreg.client import lineage
from artreg.model.wire import LineageGraph

# dataset -> train-1 -> model -> eval-1 -> metrics, asked about the model
GRAPH = LineageGraph.model_validate(
    {
        "root": "resnet@2.0.0",
        "nodes": [
            {"id": "resnet@2.0.0", "kind": "version", "name": "resnet", "version": "2.0.0"},
            {"id": "run:train-1", "kind": "run", "run_id": "train-1", "pipeline": "train", "step": "fit"},
            {"id": "iris@1.0.0", "kind": "version", "name": "iris", "version": "1.0.0"},
            {"id": "run:eval-1", "kind": "run", "run_id": "eval-1", "truncated": True},
            {"id": "scores@1.0.0", "kind": "version", "name": "scores", "version": "1.0.0"},
        ],
        "edges": [
            {"from": "run:train-1", "to": "resnet@2.0.0", "kind": "produced"},
            {"from": "run:train-1", "to": "iris@1.0.0", "kind": "used"},
            {"from": "run:eval-1", "to": "resnet@2.0.0", "kind": "used"},
            {"from": "run:eval-1", "to": "scores@1.0.0", "kind": "produced"},
        ],
    }
)


class FakeRegistry:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def lineage(self, name: str, ref: str | None, **kwargs: Any) -> LineageGraph:
        self.calls.append((name, ref, kwargs))
        return GRAPH


def run(argv: list[str]) -> tuple[int, FakeRegistry]:
    reg = FakeRegistry()
    code = cli.main(["--project", "vision", "lineage", *argv], registry=lambda _: reg)  # type: ignore[arg-type,return-value]
    return code, reg


def test_the_tree_shows_where_a_version_came_from_and_what_came_of_it(capsys: pytest.CaptureFixture[str]) -> None:
    # When the lineage of a version is asked for, with no flags
    code, reg = run(["resnet@2.0.0"])
    # Then both ways were asked for at the default depth, and drawn as a tree
    assert code == 0
    assert reg.calls == [("resnet", "2.0.0", {"direction": "both", "depth": None})]
    assert capsys.readouterr().out.splitlines() == [
        "resnet@2.0.0",
        "├── upstream",
        "│   └── produced by run train-1 (train/fit)",
        "│       └── used iris@1.0.0",
        "└── downstream",
        "    └── used by run eval-1 [more]",
        "        └── produced scores@1.0.0",
    ]


def test_flags_pick_the_direction_depth_and_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, reg = run(["resnet", "--upstream", "--depth", "5", "--format", "json"])
    assert code == 0
    assert reg.calls == [("resnet", None, {"direction": "upstream", "depth": 5})]
    assert json.loads(capsys.readouterr().out)["edges"][0] == {
        "from": "run:train-1",
        "to": "resnet@2.0.0",
        "kind": "produced",
        "role": None,  # only a linked edge has a role
    }
    assert run(["resnet", "--downstream"])[1].calls[0][2]["direction"] == "downstream"
    assert run(["resnet", "--upstream", "--downstream"])[0] == cli.EXIT_USAGE


def test_mermaid_draws_the_data_flowing(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(["resnet@2.0.0", "--format", "mermaid"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "flowchart LR",
        '    n0["resnet@2.0.0"]',
        '    n1(["run train-1 (train/fit)"])',
        '    n2["iris@1.0.0"]',
        '    n3(["run eval-1 [more]"])',
        '    n4["scores@1.0.0"]',
        "    n2 -->|used by| n1",
        "    n0 -->|used by| n3",
        "    n3 -->|produced| n4",
        "    n1 -->|produced| n0",
        "    style n0 stroke-width:3px",
    ]


def test_dot_is_a_graphviz_digraph() -> None:
    text = lineage.dot(GRAPH)
    assert text.startswith("digraph lineage {")
    assert '"iris@1.0.0" -> "run:train-1" [label="used by"];' in text
    assert '"run:train-1" -> "resnet@2.0.0" [label="produced"];' in text
    assert '"resnet@2.0.0" [shape=box, label="resnet@2.0.0", penwidth=3];' in text
    assert text.endswith("}")


LINKED = LineageGraph.model_validate(
    {
        "root": "fraud@1.2.42",
        "nodes": [
            {"id": "fraud@1.2.42", "kind": "version", "name": "fraud", "version": "1.2.42"},
            {"id": "iris@1.0.0", "kind": "version", "name": "iris", "version": "1.0.0"},
            {"id": "ckpt@3.0.0", "kind": "version", "name": "ckpt", "version": "3.0.0"},
        ],
        "edges": [
            {"from": "fraud@1.2.42", "to": "iris@1.0.0", "kind": "linked", "role": "training_data"},
            {"from": "fraud@1.2.42", "to": "ckpt@3.0.0", "kind": "linked", "role": "checkpoints/epoch-3"},
        ],
    }
)


def test_linked_versions_are_drawn_upstream_of_the_version_holding_them() -> None:
    # When a model version that links a dataset and a checkpoint is drawn
    assert lineage.tree(LINKED).splitlines() == [
        "fraud@1.2.42",
        "└── upstream",
        "    ├── links checkpoints/epoch-3: ckpt@3.0.0",
        "    └── links training_data: iris@1.0.0",
    ]
    # Then in the pictures each target flows into the model, labelled with its role
    assert "n2 -->|linked as checkpoints/epoch-3| n0" in lineage.mermaid(LINKED)
    assert '"iris@1.0.0" -> "fraud@1.2.42" [label="linked as training_data"];' in lineage.dot(LINKED)
