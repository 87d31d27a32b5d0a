"""The `artreg` command against `artreg server`, run as a user runs it: a subprocess with ARTREG_URL and
ARTREG_PROJECT in its environment, read through its output, its JSON and its exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.server import ARTREG, RunningServer

REMOTE = "https://data.example.com/imagenet/train.csv"


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ARTREG, *map(str, args)],
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str | Path) -> str:
        """Runs a command that must succeed; answers its standard output."""
        done = self(*args)
        assert done.returncode == 0, f"artreg {' '.join(map(str, args))}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(server: RunningServer, tmp_path: Path) -> Cli:
    env = {
        **os.environ,
        "ARTREG_URL": server.url,
        "ARTREG_PROJECT": "vision",
        "ARTREG_PROGRESS": "0",
        "ARTREG_CACHE_DIR": str(tmp_path / "cache"),
    }
    return Cli(env, tmp_path)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "labels").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(128 * 1024))
    (root / "config.json").write_bytes(b'{"layers": 50}')
    (root / "labels" / "classes.txt").write_bytes(b"cat\ndog\n")
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def log_versions(cli: Cli, tmp_path: Path, count: int, name: str = "resnet") -> None:
    for i in range(1, count + 1):
        source = tmp_path / f"{name}-{i}.bin"
        source.write_bytes(f"{name} version {i}".encode())
        cli.ok("log", name, source, "--type", "model")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# ---------------------------------------------------------------- log, get, download, ls


def test_log_then_get_and_download_by_alias(cli: Cli, model_dir: Path, tmp_path: Path) -> None:
    # Given a model folder logged from the command line with an alias, tags, metadata and a reference
    out = cli.ok(
        "log", "resnet", model_dir,
        "--type", "model",
        "--alias", "staging",
        "--tag", "t",
        "--tag", "customer:1",
        "--meta", "framework=pytorch",
        "--meta", "epochs=90",
        "--remote", f"{REMOTE}=raw/train.csv",
    )  # fmt: skip
    assert "resnet@1.0.0" in out

    # When the deploy job reads it back by alias, as JSON
    record = cli.json("get", "resnet@staging")

    # Then it is what was logged; a JSON-looking --meta value is JSON, the rest a string
    assert (record["name"], record["version"], record["type"]) == ("resnet", "1.0.0", "model")
    assert set(record["aliases"]) == {"latest", "staging"}
    assert set(record["tags"]) == {"t", "customer:1"}
    assert record["metadata"] == {"framework": "pytorch", "epochs": 90}
    assert sorted(f["path"] for f in record["files"]) == sorted(tree(model_dir))
    assert [(r["path"], r["uri"]) for r in record["remote"]] == [("raw/train.csv", REMOTE)]

    # When it is downloaded by alias into a new folder
    done = cli.json("download", "resnet@staging", tmp_path / "out")

    # Then the folder holds the logged bytes, and the reference is reported, not fetched
    assert tree(tmp_path / "out") == tree(model_dir)
    assert (done["version"], done["downloaded"]) == ("1.0.0", 3)
    assert [r["uri"] for r in done["remote"]] == [REMOTE]
    # and the human form of `get` names the version, its aliases and its files
    human = cli.ok("get", "resnet@staging")
    assert "resnet@1.0.0" in human
    assert "staging" in human
    assert "weights.bin" in human


def test_a_second_download_is_served_from_what_is_already_there(cli: Cli, model_dir: Path, tmp_path: Path) -> None:
    # Given a version downloaded once into a folder
    cli.ok("log", "resnet", model_dir, "--type", "model")
    cli.ok("download", "resnet", tmp_path / "a")

    # When it is downloaded again there, and into another folder
    again = cli.json("download", "resnet", tmp_path / "a")
    other = cli.json("download", "resnet", tmp_path / "b")

    # Then nothing is fetched again: the files in place are kept, the others come from the cache
    assert (again["skipped"], again["bytes"]) == (3, 0)
    assert (other["from_cache"], other["bytes"]) == (3, 0)
    assert tree(tmp_path / "b") == tree(model_dir)


def test_ls_lists_artifacts_and_the_versions_of_one(cli: Cli, model_dir: Path, tmp_path: Path) -> None:
    # Given two versions of a model and one of a dataset
    log_versions(cli, tmp_path, 2)
    cli.ok("log", "iris", model_dir, "--type", "dataset")

    # When the user lists the project, then the model's versions
    artifacts = cli.ok("ls")
    versions = cli.ok("ls", "resnet")

    # Then both artifacts are listed with their latest version; the versions highest first
    assert artifacts.splitlines()[0].split()[:3] == ["NAME", "TYPE", "LATEST"]
    rows = {line.split()[0]: line.split()[1:3] for line in artifacts.splitlines()[1:]}
    assert rows == {"resnet": ["model", "2.0.0"], "iris": ["dataset", "1.0.0"]}
    assert [line.split()[0] for line in versions.splitlines()[1:]] == ["2.0.0", "1.0.0"]
    # and the same as JSON
    assert sorted(a["name"] for a in cli.json("ls")) == ["iris", "resnet"]
    assert [v["version"] for v in cli.json("ls", "resnet")] == ["2.0.0", "1.0.0"]
    assert [a["name"] for a in cli.json("ls", "--type", "dataset")] == ["iris"]


# ---------------------------------------------------------------- aliases, tags, deletion


def test_alias_set_history_and_rm(cli: Cli, tmp_path: Path) -> None:
    # Given versions 1.0.0 and 2.0.0
    log_versions(cli, tmp_path, 2)

    # When production is created on 1.0.0, then moved to 2.0.0 by a deploy expecting 1.0.0
    assert "resnet@production -> 1.0.0" in cli.ok("alias", "set", "resnet", "production", "1.0.0", "--expect", "none")
    cli.ok("alias", "set", "resnet", "production", "2.0.0", "--expect", "1.0.0")

    # Then a deploy that still expects 1.0.0 is refused with exit 4, and production stays
    stale = cli("alias", "set", "resnet", "production", "1.0.0", "--expect", "1.0.0")
    assert stale.returncode == 4
    assert stale.stderr.startswith("artreg: precondition_failed:")
    assert cli.json("get", "resnet@production")["version"] == "2.0.0"
    # and the history shows both moves, newest first
    history = cli.json("alias", "history", "resnet", "production")
    assert [(m["previous_version"], m["version"]) for m in history] == [("1.0.0", "2.0.0"), (None, "1.0.0")]
    assert "AT" in cli.ok("alias", "history", "resnet", "production").splitlines()[0]

    # When the alias is removed
    cli.ok("alias", "rm", "resnet", "production")

    # Then resolving it is "not found", exit 3
    gone = cli("get", "resnet@production")
    assert gone.returncode == 3
    assert gone.stderr.startswith("artreg: not_found:")


def test_tag_adds_and_removes_tags(cli: Cli, tmp_path: Path) -> None:
    # Given a version
    log_versions(cli, tmp_path, 1)

    # When tags are added, then one removed
    cli.ok("tag", "resnet@1.0.0", "--add", "reviewed", "--add", "customer:1")
    out = cli.ok("tag", "resnet@1.0.0", "--remove", "customer:1")

    # Then the version keeps the other one
    assert "reviewed" in out
    assert cli.json("get", "resnet@1.0.0")["tags"] == ["reviewed"]
    assert [v["version"] for v in cli.json("ls", "resnet", "--tag", "reviewed")] == ["1.0.0"]
    # and a tag command with nothing to do is a usage error
    assert cli("tag", "resnet@1.0.0").returncode == 2


def test_rm_refuses_a_version_an_alias_holds_unless_forced(cli: Cli, tmp_path: Path) -> None:
    # Given versions 1.0.0 and 2.0.0, production on 2.0.0
    log_versions(cli, tmp_path, 2)
    cli.ok("alias", "set", "resnet", "production", "2.0.0")

    # When 2.0.0 is removed without --force
    held = cli("rm", "resnet@2.0.0")

    # Then it is a conflict, exit 4, and the version stays
    assert held.returncode == 4
    assert cli.json("get", "resnet@2.0.0")["state"] == "committed"

    # When it is removed with --force
    assert "deleted resnet@2.0.0" in cli.ok("rm", "resnet@2.0.0", "--force")

    # Then it is gone, latest is 1.0.0 again, and only 1.0.0 is listed
    assert cli("get", "resnet@2.0.0").returncode == 3
    assert cli.json("get", "resnet")["version"] == "1.0.0"
    assert [v["version"] for v in cli.json("ls", "resnet")] == ["1.0.0"]
    # and rm without a version is a usage error
    assert cli("rm", "resnet").returncode == 2


# ---------------------------------------------------------------- exit codes


def test_not_found_exits_3(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 1)
    for args in (("get", "no-such-model"), ("get", "resnet@9.9.9"), ("download", "resnet@staging", tmp_path / "x")):
        done = cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert done.stderr.startswith("artreg: not_found:")
    assert not (tmp_path / "x").exists()


def test_conflict_exits_4(cli: Cli, tmp_path: Path) -> None:
    # Given version 1.0.0
    log_versions(cli, tmp_path, 1)
    # When 1.0.0 is logged again explicitly, or `latest` is moved by hand
    taken = cli("log", "resnet", tmp_path / "resnet-1.bin", "--type", "model", "--version", "1.0.0")
    latest = cli("alias", "set", "resnet", "latest", "1.0.0")
    # Then both are conflicts
    assert (taken.returncode, latest.returncode) == (4, 4)
    assert taken.stderr.startswith("artreg: version_exists:")
    assert latest.stderr.startswith("artreg: alias_conflict:")


def test_invalid_request_exits_5(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 1)
    for args in (
        ("log", "no spaces allowed", tmp_path / "resnet-1.bin"),  # a name that breaks the rules
        ("alias", "set", "resnet", "Production", "1.0.0"),  # aliases are lower case
        ("log", "resnet", tmp_path / "resnet-1.bin", "--type", "model", "--version", "1.0"),  # not semver
    ):
        done = cli(*args)
        assert done.returncode == 5, (args, done.stderr)
        assert done.stderr.startswith("artreg: ")


def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    for args in (
        (),  # no command
        ("log",),  # no NAME
        ("log", "resnet"),  # nothing to log
        ("get", "resnet@"),  # NAME@ with no ref
        ("frobnicate",),
        ("log", "resnet", tmp_path, "--bump", "major", "--version", "1.0.0"),
    ):
        assert cli(*args).returncode == 2, args
    # and no project anywhere is a usage error too
    assert cli("ls", env={"ARTREG_PROJECT": ""}).returncode == 2


def test_a_registry_that_cannot_be_reached_exits_6(cli: Cli) -> None:
    # Given ARTREG_URL pointing at a port nothing listens on
    down = {"ARTREG_URL": f"http://127.0.0.1:{closed_port()}"}
    # When the user lists artifacts
    done = cli("ls", env=down)
    # Then the exit code says "unavailable", with a message on stderr
    assert done.returncode == 6
    assert done.stderr.startswith("artreg: unreachable:")
    assert done.stdout == ""


# ---------------------------------------------------------------- what a new user stumbled on


def test_relogging_without_type_keeps_the_artifacts_type(cli: Cli, tmp_path: Path) -> None:
    # Given a model logged with --type model
    log_versions(cli, tmp_path, 1)
    # When a new version is logged without --type
    (tmp_path / "v2.bin").write_bytes(b"v2")
    record = cli.json("log", "resnet", tmp_path / "v2.bin")
    # Then it is a model too, not a type_mismatch
    assert (record["version"], record["type"]) == ("2.0.0", "model")
    # and a new artifact without --type is an "artifact"
    assert cli.json("log", "notes", tmp_path / "v2.bin")["type"] == "artifact"


def test_if_changed_says_unchanged_when_nothing_was_logged(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 1)
    # When the same content is logged again with --if-changed
    out = cli.ok("log", "resnet", tmp_path / "resnet-1.bin", "--if-changed")
    # Then it says so, and no version was made
    assert out.startswith("unchanged: latest is resnet@1.0.0")
    assert "logged" not in out
    assert [v["version"] for v in cli.json("ls", "resnet")] == ["1.0.0"]
    assert cli.json("log", "resnet", tmp_path / "resnet-1.bin", "--if-changed")["created"] is False


def test_a_mistyped_artifact_says_it_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 1)
    for args in (("get", "resnt"), ("download", "resnt", tmp_path / "x"), ("files", "resnt"), ("lineage", "resnt")):
        done = cli(*args)
        assert done.returncode == 3, args
        assert done.stderr.strip() == "artreg: not_found: artifact 'resnt' does not exist in project 'vision'"


def test_a_mistyped_project_is_not_found_not_an_empty_table(cli: Cli, tmp_path: Path) -> None:
    # Given artifacts in project "vision"
    log_versions(cli, tmp_path, 1)
    # When the user lists a project with none (a typo)
    done = cli("ls", "--project", "visoin")
    # Then exit 3 and a message that names the project, nothing on stdout
    assert done.returncode == 3
    assert "project 'visoin' has no artifacts" in done.stderr
    assert done.stdout == ""
    # while a filter that matches nothing in a project that has artifacts is an empty table
    assert cli("ls", "--type", "dataset").returncode == 0


def test_unreachable_comes_with_a_hint(cli: Cli) -> None:
    done = cli("get", "resnet", env={"ARTREG_URL": f"http://127.0.0.1:{closed_port()}"})
    assert done.returncode == 6
    assert "artreg server" in done.stderr
    assert "ARTREG_URL" in done.stderr


def test_use_and_download_with_a_run_id_are_uses_of_that_run(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 2)
    cli.ok("use", "resnet@1.0.0", "--run-id", "eval-1")
    cli.ok("download", "resnet", tmp_path / "out", "--run-id", "eval-1")
    assert cli("download", "resnet@1.0.0", tmp_path / "out2", env={"ARTREG_RUN_ID": "eval-2"}).returncode == 0
    # the run's lineage, as GET /v1/projects/vision/runs/{run_id} answers it
    url = cli.env["ARTREG_URL"]
    assert sorted(requests.get(f"{url}/v1/projects/vision/runs/eval-1", timeout=10).json()["used"]) == [
        "resnet@1.0.0",
        "resnet@2.0.0",
    ]
    assert requests.get(f"{url}/v1/projects/vision/runs/eval-2", timeout=10).json()["used"] == ["resnet@1.0.0"]


def test_uris_work_as_references_without_a_project(cli: Cli, tmp_path: Path) -> None:
    log_versions(cli, tmp_path, 1)
    no_project = {"ARTREG_PROJECT": ""}
    done = cli("get", "artreg://vision/resnet@latest", "--json", env=no_project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "1.0.0"
    one = cli("download", "artreg://vision/resnet@1.0.0/resnet-1.bin", tmp_path / "one", env=no_project)
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "one" / "resnet-1.bin").read_bytes() == b"resnet version 1"
    for args in (
        ("tag", "artreg://vision/resnet@1.0.0", "--add", "checked"),
        ("ls", "artreg://vision/resnet"),
        ("lineage", "artreg://vision/resnet@latest"),
        ("rm", "artreg://vision/resnet@1.0.0"),
    ):
        done = cli(*args, env=no_project)
        assert done.returncode == 0, (args, done.stderr)
    assert cli("get", "resnet@1.0.0", "--json").returncode == 3  # deleted
    assert cli("rm", "artreg://vision/resnet", env=no_project).returncode == 5  # no version: nothing deleted


def test_files_shows_each_files_metadata(cli: Cli, tmp_path: Path) -> None:
    from artreg.client import Artifact, Registry

    (tmp_path / "train.csv").write_text("x\n1\n")
    reg = Registry(cli.env["ARTREG_URL"], project="vision", progress=False, cache=False)
    reg.log_artifact(Artifact("iris").add(tmp_path / "train.csv", metadata={"split": "train"}))
    out = cli.ok("files", "iris")
    assert "train.csv" in out
    assert '{"split": "train"}' in out
    assert '{"split": "train"}' in cli.ok("get", "iris")
    assert cli.json("files", "iris")[0]["metadata"] == {"split": "train"}
