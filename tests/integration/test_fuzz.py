"""schemathesis against the API Lambda's handler on moto, behind a local front that does what API
Gateway does before the function runs (tests/support/lambda_gateway.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BUCKET, TABLE
from tests.support.fuzz import fuzz
from tests.support.lambda_gateway import SIGNED, api_handler, serving


@pytest.mark.slow
def test_the_fuzzer_finds_no_server_error_and_no_answer_off_the_document(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API function behind API Gateway's front, and requests carrying a SigV4 Authorization
    with serving(api_handler(monkeypatch, TABLE, BUCKET)) as url:
        # When schemathesis runs every check on every operation of the served document
        # (all but one check: schemathesis wants a 401 for a request without Authorization, where API
        # Gateway answers 403 by AWS's documentation, as the front does; the local run has that check on)
        run = fuzz(url, max_examples=3, headers={"Authorization": SIGNED}, exclude_checks=("missing_required_header",))
    # Then no check fails, the unsigned requests it tries (403 from the front) included
    assert run.returncode == 0, run.stdout[-6000:]
