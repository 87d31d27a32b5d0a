"""schemathesis against `artreg server` (a few examples an operation; the README has the longer run)."""

from __future__ import annotations

import pytest

from tests.support.fuzz import fuzz
from tests.support.server import RunningServer


@pytest.mark.slow
def test_the_fuzzer_finds_no_server_error_and_no_answer_off_the_document(server: RunningServer) -> None:
    # When schemathesis runs every check on every operation of the served document
    run = fuzz(server.url, max_examples=3)
    # Then no check fails: no 5xx, no answer the document does not describe, no bad input accepted
    assert run.returncode == 0, run.stdout[-6000:]
