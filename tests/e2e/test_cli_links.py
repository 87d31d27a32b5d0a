"""`artreg link`, `unlink`, `runs` and the links of `artreg get`, against `artreg server`, as a user runs them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import Cli, cli  # noqa: F401 - `cli` is a fixture


def test_link_get_unlink_and_runs(cli: Cli, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    # Given a dataset at stable and a model logged by a run that used it
    (tmp_path / "iris.csv").write_text("a,b\n1,2\n")
    (tmp_path / "model.pkl").write_bytes(b"weights")
    cli.ok("log", "iris", tmp_path / "iris.csv", "--type", "dataset", "--alias", "stable", "--run-id", "prep-1")
    cli.ok("log", "fraud", tmp_path / "model.pkl", "--type", "model", "--run-id", "train-1", "--input", "iris@1.0.0")
    # When the model links the dataset by alias
    made = cli.json("link", "fraud@1.0.0", "training_data", "iris@stable")
    # Then it is pinned to the version the alias names, and `get` shows it
    assert (made["role"], made["target"]["name"], made["target"]["version"]) == ("training_data", "iris", "1.0.0")
    shown = cli.ok("get", "fraud@1.0.0")
    assert "training_data" in shown
    assert "iris@1.0.0" in shown
    assert cli.json("get", "fraud@latest")["links"][0]["target"]["digest"] == made["target"]["digest"]
    # And a bad role is exit 5, a missing target exit 3, a stale --if-match exit 4, and nothing changed
    assert cli("link", "fraud@1.0.0", "Bad Role", "iris@1.0.0").returncode == 5
    assert cli("link", "fraud@1.0.0", "eval", "iris@9.0.0").returncode == 3
    assert cli("link", "fraud@1.0.0", "training_data", "iris@1.0.0", "--if-match", "0" * 64).returncode == 4
    assert cli("link", "fraud", "training_data", "iris@1.0.0").returncode == 2
    assert [x["role"] for x in cli.json("get", "fraud@1.0.0")["links"]] == ["training_data"]
    # When it is unlinked, the record has no link left
    assert "unlinked" in cli.ok("unlink", "fraud@1.0.0", "training_data")
    assert cli.json("get", "fraud@1.0.0")["links"] == []
    # And the runs are listed, most recently seen first
    runs = cli.json("runs")
    assert [(r["run_id"], r["produced"], r["used"]) for r in runs] == [("train-1", 1, 1), ("prep-1", 1, 0)]
    assert "train-1" in cli.ok("runs", "--limit", "1")
    assert "prep-1" not in cli.ok("runs", "--limit", "1")
