"""The `artreg` command with a fake Registry handed to `main`: argument parsing, what each command
asks of the SDK, output, and exit codes."""

from __future__ import annotations

import json
import sys
import types
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from artreg import cli
from artreg.client import (
    ArtregError,
    ClientSettings,
    Conflict,
    DownloadResult,
    Forbidden,
    Invalid,
    LoggedArtifact,
    NotFound,
    PreconditionFailed,
    Retryable,
    Throttled,
    TooLarge,
    Unreachable,
)
from artreg.model.wire import ArtifactSummary, RemoteEntry


def version(name: str = "resnet", number: str = "1.0.0", **extra: Any) -> LoggedArtifact:
    return LoggedArtifact.model_validate(
        {
            "project": "vision",
            "name": name,
            "type": "model",
            "version": number,
            "created_at": "2026-11-22T10:00:00Z",
            "aliases": ["latest"],
            "tags": ["customer:1"],
            "files": [{"path": "model.pt", "size": 2048, "sha256": "a" * 64}],
            "size": 2048,
            "file_count": 1,
            "digest": "d" * 64,
            **extra,
        }
    )


class FakeRegistry:
    """Records each call; answers with `answer`, or raises `error`."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))
        if self.error is not None:
            raise self.error

    def log_artifact(self, artifact: Any, **kwargs: Any) -> LoggedArtifact:
        self._record("log_artifact", artifact, **kwargs)
        return version()

    def summary(self, name: str) -> ArtifactSummary:
        self._record("summary", name)
        raise NotFound(f"artifact {name!r} not found")

    def get_artifact(self, name: str, ref: str | None = None) -> LoggedArtifact:
        self._record("get_artifact", name, ref)
        return version()

    def download(self, name: str, ref: str | None, root: str, **kwargs: Any) -> DownloadResult:
        self._record("download", name, ref, root, **kwargs)
        remote = [RemoteEntry(path="raw/x", uri="s3://b/x")]
        return DownloadResult(Path(root), "1.0.0", "d" * 64, 2, 1, 0, 4096, remote)

    def list_artifacts(self, type: str | None = None) -> list[ArtifactSummary]:
        self._record("list_artifacts", type=type)
        summary = {
            "project": "vision",
            "name": "resnet",
            "type": "model",
            "latest": "1.0.0",
            "version_count": 1,
            "aliases": {"production": "1.0.0"},
            "created_at": "2026-11-22T10:00:00Z",
            "updated_at": "2026-11-22T10:00:00Z",
        }
        return [ArtifactSummary.model_validate(summary)]

    def versions(self, name: str, **kwargs: Any) -> list[LoggedArtifact]:
        self._record("versions", name, **kwargs)
        return [version(number="2.0.0"), version(number="1.0.0")]

    def set_alias(self, name: str, alias: str, number: str, **kwargs: Any) -> LoggedArtifact:
        self._record("set_alias", name, alias, number, **kwargs)
        return version(number=number)

    def remove_alias(self, name: str, alias: str) -> None:
        self._record("remove_alias", name, alias)

    def alias_history(self, name: str, alias: str) -> list[Any]:
        self._record("alias_history", name, alias)
        return []

    def update(self, name: str, ref: str | None, **kwargs: Any) -> LoggedArtifact:
        self._record("update", name, ref, **kwargs)
        return version()

    def delete_version(self, name: str, number: str, force: bool = False) -> LoggedArtifact:
        self._record("delete_version", name, number, force=force)
        return version(state="deleted")


def run(argv: list[str], fake: FakeRegistry | None = None) -> tuple[int, FakeRegistry]:
    reg = fake or FakeRegistry()
    code = cli.main(["--project", "vision", *argv], registry=lambda _: reg)  # type: ignore[arg-type,return-value]
    return code, reg


# ---------------------------------------------------------------- commands


def test_log_builds_the_artifact_from_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a file and a folder
    (tmp_path / "model.pt").write_bytes(b"w")
    (tmp_path / "configs").mkdir()

    # When they are logged with every kind of flag
    code, reg = run(
        [
            "log",
            "resnet",
            str(tmp_path / "model.pt"),
            str(tmp_path / "configs"),
            "--type=model",
            "--bump=minor",
            "--alias=staging",
            "--tag=customer:1",
            "--meta=framework=pytorch",
            "--meta=epochs=10",
            '--meta=opts={"lr": 0.1}',
            "--remote=s3://bucket/dir/train.csv=raw/train.csv",
            "--remote=s3://bucket/k?versionId=abc",
            "--run-id=run-42",
            "--input=iris@1.0.0",
            "--if-changed",
        ]
    )

    # Then the SDK got the artifact and the options, and the result is printed
    assert code == cli.EXIT_OK
    (_, (art,), kwargs) = reg.calls[0]
    assert (art.name, art.type, art.aliases, art.tags) == ("resnet", "model", {"staging"}, {"customer:1"})
    assert art.metadata == {"framework": "pytorch", "epochs": 10, "opts": {"lr": 0.1}}
    assert [s for s, _, _ in art.sources] == [str(tmp_path / "model.pt"), str(tmp_path / "configs")]
    assert [(r.uri, r.path) for r in art.remote] == [
        ("s3://bucket/dir/train.csv", "raw/train.csv"),
        ("s3://bucket/k?versionId=abc", "k"),
    ]
    assert kwargs["bump"] == "minor"
    assert kwargs["version"] is None
    assert kwargs["run_id"] == "run-42"
    assert kwargs["inputs"] == ["iris@1.0.0"]
    assert kwargs["if_changed"] is True
    assert "logged resnet@1.0.0" in capsys.readouterr().out


def test_get_prints_a_table_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a registry
    # When a version is shown for people and for scripts
    human, reg = run(["get", "resnet@production"])
    text = capsys.readouterr().out
    machine, _ = run(["get", "resnet", "--json"])
    data = json.loads(capsys.readouterr().out)

    # Then the ref was split, the table shows the files, and the JSON is the record
    assert (human, machine) == (0, 0)
    assert reg.calls == [("get_artifact", ("resnet", "production"), {})]
    assert "resnet@1.0.0" in text
    assert "model.pt" in text
    assert data["version"] == "1.0.0"
    assert data["files"][0]["path"] == "model.pt"


def test_download_lists_what_it_did(capsys: pytest.CaptureFixture[str]) -> None:
    # When a version is downloaded without the cache
    code, reg = run(["download", "resnet@1.0.0", "out", "--no-cache"])

    # Then the SDK was asked for it, and the summary names the remote entries left alone
    assert code == 0
    assert reg.calls[0][:2] == ("download", ("resnet", "1.0.0", "out"))
    assert reg.calls[0][2]["cache"] is False
    out = capsys.readouterr().out
    assert "2 downloaded" in out
    assert "s3://b/x" in out


def test_ls_lists_artifacts_or_versions(capsys: pytest.CaptureFixture[str]) -> None:
    # When artifacts, then versions with filters, are listed
    run(["ls"])
    artifacts = capsys.readouterr().out
    _, reg = run(["ls", "resnet", "--tag", "best", "--meta", "epochs=10", "--limit", "1", "--json"])
    versions = json.loads(capsys.readouterr().out)

    # Then a table of artifacts, and the versions filtered and capped
    assert "resnet" in artifacts
    assert "production" in artifacts
    assert reg.calls == [("versions", ("resnet",), {"tag": "best", "alias": None, "metadata": {"epochs": "10"}})]
    assert [v["version"] for v in versions] == ["2.0.0"]


def test_alias_commands() -> None:
    # When an alias is set, set with expectations, removed and shown
    _, plain = run(["alias", "set", "resnet", "production", "2.0.0"])
    _, absent = run(["alias", "set", "resnet", "production", "2.0.0", "--expect", "none"])
    _, moved = run(["alias", "set", "resnet", "production", "2.0.0", "--expect", "1.0.0"])
    _, removed = run(["alias", "rm", "resnet", "production"])
    _, history = run(["alias", "history", "resnet", "production"])

    # Then each asked the SDK for the right thing
    assert plain.calls == [("set_alias", ("resnet", "production", "2.0.0"), {})]
    assert absent.calls == [("set_alias", ("resnet", "production", "2.0.0"), {"expected_version": None})]
    assert moved.calls == [("set_alias", ("resnet", "production", "2.0.0"), {"expected_version": "1.0.0"})]
    assert removed.calls == [("remove_alias", ("resnet", "production"), {})]
    assert history.calls == [("alias_history", ("resnet", "production"), {})]


def test_tag_and_rm() -> None:
    # When tags change and a version is deleted
    _, tagged = run(["tag", "resnet@1.0.0", "--add", "best", "--add", "v", "--remove", "old"])
    _, removed = run(["rm", "resnet@1.0.0", "--force"])

    # Then one PATCH and one forced delete were asked for
    assert tagged.calls == [("update", ("resnet", "1.0.0"), {"tags_add": ["best", "v"], "tags_remove": ["old"]})]
    assert removed.calls == [("delete_version", ("resnet", "1.0.0"), {"force": True})]


def test_the_url_and_project_come_from_flags_or_the_settings() -> None:
    # Given settings (as read from ARTREG_* or the config file), and flags before and after the command
    read = ClientSettings(url="http://env:1", project="envproj")
    seen: list[Namespace] = []

    def factory(args: Namespace) -> FakeRegistry:
        seen.append(args)
        return FakeRegistry()

    # When commands run
    cli.main(["get", "resnet"], registry=factory)  # type: ignore[arg-type]
    cli.main(["--url", "http://flag:2", "get", "resnet", "--project", "p2"], registry=factory)  # type: ignore[arg-type]
    from_settings = cli.default_registry(seen[0], read)
    from_flags = cli.default_registry(seen[1], read)

    # Then flags win over the settings, wherever they are given
    assert (from_settings.url, from_settings.project) == ("http://env:1", "envproj")
    assert (from_flags.url, from_flags.project) == ("http://flag:2", "p2")


def test_a_bad_setting_exits_5_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a variable that does not parse (and no config file)
    monkeypatch.setenv("ARTREG_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("ARTREG_RETRY_ATTEMPTS", "many")

    # When a command runs / Then it says which variable is wrong, and exits as for an invalid request
    assert cli.main(["--project", "vision", "get", "resnet"]) == cli.EXIT_INVALID
    assert "ARTREG_RETRY_ATTEMPTS" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("s3://b/k", ("s3://b/k", None)),
        ("s3://b/k=raw/k", ("s3://b/k", "raw/k")),
        ("s3://b/k?versionId=abc", ("s3://b/k?versionId=abc", None)),
        ("s3://b/k?versionId=abc=raw/k", ("s3://b/k?versionId=abc", "raw/k")),
        ("https://h/x?a=1&b=2", ("https://h/x?a=1&b=2", None)),
    ],
)
def test_split_remote(spec: str, expected: tuple[str, str | None]) -> None:
    # Given a --remote value / Then the URI and its optional path are told apart
    assert cli.split_remote(spec) == expected


def test_the_server_command_calls_serve_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stand-in for artreg.local.server
    served: list[tuple[str, int, str, str | None, str | None]] = []
    module = types.ModuleType("artreg.local.server")
    module.serve = lambda host, port, data, public_url, webhook, **_: served.append(  # type: ignore[attr-defined]
        (host, port, data, public_url, webhook)
    )
    monkeypatch.setitem(sys.modules, "artreg.local.server", module)

    # When the server command runs
    code = cli.main(
        [
            *("server", "--host", "0.0.0.0", "--port", "9000", "--data", "/tmp/x", "--public-url", "http://h:9000"),
            *("--webhook", "http://127.0.0.1:9999/hook"),
        ]
    )

    # Then serve got the options, and no registry client was made
    assert code == 0
    assert served == [("0.0.0.0", 9000, "/tmp/x", "http://h:9000", "http://127.0.0.1:9999/hook")]


def test_the_server_takes_its_data_folder_and_webhook_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a stand-in for artreg.local.server, and settings (ARTREG_DATA, ARTREG_WEBHOOK) naming both
    served: list[tuple[str, str | None]] = []
    module = types.ModuleType("artreg.local.server")
    module.serve = lambda host, port, data, public_url, webhook, **_: served.append((data, webhook))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "artreg.local.server", module)
    read = ClientSettings(data=tmp_path / "data", webhook="http://hook.test/")

    # When the server runs with no flags, then with --data
    cli.main(["server"], settings=read)
    cli.main(["server", "--data", str(tmp_path / "flag")], settings=read)

    # Then the settings filled what the flags left out
    assert served == [(str(tmp_path / "data"), "http://hook.test/"), (str(tmp_path / "flag"), "http://hook.test/")]


def test_the_server_takes_protected_aliases_and_file_roots_from_its_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stand-in for artreg.local.server
    served: list[dict[str, Any]] = []
    module = types.ModuleType("artreg.local.server")
    module.serve = lambda *_, **options: served.append(options)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "artreg.local.server", module)

    # When the server runs with no such flag, then with them (repeated, and comma-separated)
    cli.main(["server"])
    cli.main(["server", "--protected-alias", "production,prod", "--protected-alias", "gate"])
    cli.main(["server", "--allow-file-root", "/data/a", "--allow-file-root", "/data/b"])

    # Then no flag leaves the defaults to the settings (production; no file root), and the flags are passed on
    assert (served[0]["protected_aliases"], served[0]["file_roots"]) == (None, [])
    assert served[1]["protected_aliases"] == ["production,prod", "gate"]
    assert served[2]["file_roots"] == [Path("/data/a"), Path("/data/b")]


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no artifact resnet"), 3),
        (Conflict("version 1.0.0 exists", code="version_exists"), 4),
        (PreconditionFailed("alias moved"), 4),
        (Invalid("bad name"), 5),
        (TooLarge("metadata too large"), 5),
        (Retryable("unavailable"), 6),
        (Throttled("slow down"), 6),
        (Unreachable("could not reach registry"), 6),
        (Forbidden("no access"), 1),
        (ArtregError("boom"), 1),
    ],
)
def test_errors_map_to_exit_codes(error: ArtregError, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a registry that fails with the error
    # When a command runs
    got, _ = run(["get", "resnet"], FakeRegistry(error))

    # Then the exit code is the error's, and stderr says code and message
    assert got == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"artreg: {error.code}: {error.message}"
    # and an unreachable registry comes with what to do about it
    assert ("artreg server" in err[-1] and "ARTREG_URL" in err[-1]) == (error.code == "unreachable")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frob"],
        ["log", "resnet", "x", "--bump", "major", "--version", "1.0.0"],
        ["log", "resnet", "x", "--bump", "huge"],
        ["log", "resnet"],
        ["rm", "resnet"],
        ["tag", "resnet@1.0.0"],
        ["alias", "set", "resnet", "production"],
        ["ls", "--tag", "best"],
        ["log", "resnet", "x", "--meta", "novalue"],
        ["get", "resnet@"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given a command line that makes no sense
    # When it runs / Then it exits 2 without calling the registry
    code, reg = run(argv)
    assert code == cli.EXIT_USAGE
    assert reg.calls == []
    assert capsys.readouterr().err


def test_no_project_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given no project anywhere
    # When a command runs with the default registry factory / Then it exits 2
    assert cli.main(["get", "resnet"], settings=ClientSettings()) == cli.EXIT_USAGE
    assert "ARTREG_PROJECT" in capsys.readouterr().err


def test_a_missing_local_path_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When a path that does not exist is logged / Then it exits 1 before the registry is asked
    code, reg = run(["log", "resnet", str(tmp_path / "missing.pt")])
    assert code == cli.EXIT_ERROR
    assert reg.calls == []
    assert "io_error" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    # When help or the version is asked for / Then it exits 0
    assert cli.main(["--help"]) == 0
    assert cli.main(["--version"]) == 0
    assert "artreg" in capsys.readouterr().out
