"""`artreg server` under many clients at once, as a team's CI and a deploy service use it: every client
gets the answer to its own request, and the server keeps answering however long it serves."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from artreg.client import Artifact, LoggedArtifact, Registry
from tests.support.server import RunningServer


@pytest.fixture
def production(server: RunningServer, tmp_path: Path) -> tuple[Registry, LoggedArtifact]:
    """resnet@1.0.0, promoted to production (an upload may not move it), and the SDK client that logged it."""
    reg = Registry(server.url, project="vision", progress=False, cache_dir=tmp_path / "cache")
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(1024))
    logged = reg.log_artifact(Artifact("resnet", type="model").add(source))
    reg.set_alias("resnet", "production", logged.version)
    return reg, logged


def run_at_once(tasks: list[Callable[[], list[str]]]) -> list[str]:
    """Runs the tasks on one thread each, all at once; answers every failure they report."""
    with ThreadPoolExecutor(len(tasks)) as pool:
        return [failure for failures in pool.map(lambda task: task(), tasks) for failure in failures]


def test_concurrent_readers_each_get_the_answer_to_their_own_request(
    server: RunningServer, production: tuple[Registry, LoggedArtifact]
) -> None:
    # Given resnet@production, read at once by SDK clients and by a cache that revalidates its copy
    reg, logged = production
    url = f"{server.url}/v1/projects/vision/artifacts/resnet/versions/production"

    def sdk_reader() -> list[str]:
        failures = []
        for _ in range(100):
            try:
                got = reg.get_artifact("resnet@production").version
            except Exception as error:
                got = repr(error)[:200]
            if got != logged.version:
                failures.append(f"SDK read: {got}")
        return failures

    def revalidating_cache() -> list[str]:
        session = requests.Session()
        etag = {"If-None-Match": f'"{logged.digest}"'}
        statuses = [session.get(url, headers=etag, timeout=10).status_code for _ in range(100)]
        return [f"revalidation: {status}, not 304" for status in statuses if status != 304]

    # When they all ask at once
    failures = run_at_once([sdk_reader, revalidating_cache] * 4)

    # Then every SDK call got the version, and every revalidation "304 Not Modified"
    assert failures == [], f"{len(failures)} of 800 requests got another's answer, e.g. {failures[:3]}"


def test_the_server_keeps_answering_when_its_output_is_not_read(
    server: RunningServer, production: tuple[Registry, LoggedArtifact]
) -> None:
    # Given a server whose standard output, past its 'serving' line, nobody reads (as a supervisor does)
    _, logged = production
    url = f"{server.url}/v1/projects/vision/artifacts/resnet/versions/production"

    def deploy_job() -> list[str]:
        session = requests.Session()
        failures = []
        for _ in range(500):
            try:
                got = session.get(url, timeout=10).json()["version"]
            except requests.RequestException as error:
                return [f"no answer: {error!r}"[:300]]
            if got != logged.version:
                failures.append(got)
        return failures

    # When deploy jobs resolve production 4,000 times
    failures = run_at_once([deploy_job] * 8)

    # Then every request was answered with the version
    assert failures == []


def test_a_resolve_right_after_an_alias_move_sees_the_move(
    server: RunningServer, production: tuple[Registry, LoggedArtifact], tmp_path: Path
) -> None:
    # Given two versions of resnet, and a deploy job resolving resnet@staging on a kept-alive connection
    # (a resolve is answered on the server's event loop, a move by a worker thread: two SQLite connections)
    reg, first = production
    source = tmp_path / "model-2.bin"
    source.write_bytes(os.urandom(1024))
    second = reg.log_artifact(Artifact("resnet", type="model").add(source))
    session = requests.Session()
    url = f"{server.url}/v1/resolve/vision/resnet@staging"
    seen = []
    # When staging is moved back and forth, each move followed at once by a resolve
    for step in range(40):
        moved_to = (first, second)[step % 2].version
        reg.set_alias("resnet", "staging", moved_to)
        answer = session.get(url, timeout=10)
        seen.append((moved_to, answer.status_code, answer.json().get("version")))
    # Then every resolve answered the version the alias had just been moved to
    assert [s for s in seen if s[1:] != (200, s[0])] == []
