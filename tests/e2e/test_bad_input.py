"""Bad input sent to `artreg server` over HTTP: each gets API.md's error body with a 4xx, never
http.server's or the framework's own answer, and nothing is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
import requests

from tests.support.bad_input import BAD_INPUTS, BadInput, assert_refused
from tests.support.server import RunningServer


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = RunningServer(tmp_path_factory.mktemp("bad-input") / "data")
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_with_the_error_body_and_writes_nothing(running: RunningServer, case: BadInput) -> None:
    # When the request is sent as curl would send it
    answer = requests.request(case.method, running.url + case.path, data=case.body, headers=case.headers, timeout=30)
    # Then it is refused in API.md's shape, and the store holds no upload, artifact or blob
    assert_refused(case, answer.status_code, dict(answer.headers), answer.json())
    with sqlite3.connect(running.data / "registry.db") as db:
        assert db.execute("SELECT (SELECT COUNT(*) FROM uploads) + (SELECT COUNT(*) FROM heads)").fetchone() == (0,)
    assert not [p for p in (running.data / "blobs").rglob("*") if p.is_file() and p.name != ".secret"]
