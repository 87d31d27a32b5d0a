"""The README's local commands, run as written so that they cannot rot: the server as its install
block starts it, then every fenced block marked `<!-- readme-test -->`, in order, in one fresh
folder (with `./data` new), each sh block in bash with the variables the earlier ones exported,
each python block in the venv's Python.

What the test changes, and only that: the server gets `--port 0` (a port the README's 8080 may be
taken on a shared machine) and the README's `http://127.0.0.1:8080` becomes the port it got, which
ARTREG_URL also names (the README relies on it being the default); `.venv` is this venv, linked
into the folder; the cache and the config file are the test's own."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_URL = "http://127.0.0.1:8080"
BLOCK = re.compile(r"<!-- readme-test(?P<what>: server)? -->\s*\n```(?P<lang>sh|python)\n(?P<code>.*?)\n```", re.S)


def blocks() -> list[tuple[str, str, str]]:
    """(kind: 'server' or '', language, code) of each marked block, in README order."""
    return [((m["what"] and "server") or "", m["lang"], m["code"]) for m in BLOCK.finditer(README.read_text())]


def server_command() -> list[str]:
    """The `artreg server ...` of the install block, as the README runs it."""
    (code,) = [code for kind, _, code in blocks() if kind == "server"]
    command = next(part for part in code.split("&&") if "artreg server" in part)
    return shlex.split(command.strip())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))  # the README's .venv, made by its install command
    return work


@pytest.fixture
def readme_server(folder: Path) -> Iterator[str]:
    command = server_command()
    assert command[:3] == [".venv/bin/artreg", "server", "--data"]
    process = subprocess.Popen(
        [*command, "--port", "0"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "ARTREG_CONFIG": str(folder / "no-config.toml")},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the README's artreg server exited before serving"
        yield json.loads(line)["url"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_readme_commands_run_in_order(readme_server: str, folder: Path, tmp_path: Path) -> None:
    # Given a fresh data folder, the server started as the README says, and the README's blocks
    marked = [(lang, code) for kind, lang, code in blocks() if kind != "server"]
    assert [lang for lang, _ in marked].count("sh") >= 3
    assert [lang for lang, _ in marked].count("python") >= 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARTREG_")} | {
        "ARTREG_URL": readme_server,
        "ARTREG_CACHE_DIR": str(tmp_path / "cache"),
        "ARTREG_CONFIG": str(tmp_path / "no-config.toml"),
        "ARTREG_PROGRESS": "0",
    }
    saved = tmp_path / "env"

    # When each runs in turn, as a user pastes them
    for index, (lang, code) in enumerate(marked):
        code = code.replace(DEFAULT_URL, readme_server)
        if lang == "sh":
            script = f"set -euo pipefail\n{code}\nenv -0 > {shlex.quote(str(saved))}\n"
            done = subprocess.run(
                ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False
            )
        else:
            done = subprocess.run(
                [str(folder / ".venv" / "bin" / "python"), "-c", code],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        # Then every command succeeds
        assert done.returncode == 0, f"README block {index + 1} ({lang}) failed:\n{code}\n--- stderr:\n{done.stderr}"
        if lang == "sh":  # what it exported holds for the next blocks, as in one shell
            env = dict(item.split("=", 1) for item in saved.read_text().split("\0") if "=" in item)

    # and they did what they say: the versions, the uses of the runs, the file fetched over HTTP
    reg_env = {**env, "ARTREG_PROJECT": "vision"}
    versions = subprocess.run(
        [str(folder / ".venv" / "bin" / "artreg"), "ls", "resnet", "--json"],
        cwd=folder,
        env=reg_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [v["version"] for v in json.loads(versions.stdout)] == ["2.1.0", "2.0.0", "1.0.0"]
    assert (folder / "model-copy.pt").read_bytes() == b"weights, epoch 10"
    assert (folder / "model-dir" / "configs" / "train.yaml").read_text() == "lr: 0.001\n"
