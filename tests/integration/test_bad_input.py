"""Bad input through the API Lambda's handler (API Gateway events, moto): each gets API.md's error body
with a 4xx, never the framework's own answer, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import BUCKET, TABLE
from tests.support.bad_input import BAD_INPUTS, BadInput, assert_refused
from tests.support.lambda_front import LambdaContext, api_handler, proxy_event


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_with_the_error_body_and_writes_nothing(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, case: BadInput
) -> None:
    # Given the API function, as API Gateway invokes it
    handler = api_handler(monkeypatch, TABLE, BUCKET)
    # When the request reaches it
    answer = handler(proxy_event(case.method, case.path, case.headers, case.body), LambdaContext())
    # Then it is refused in API.md's shape, and neither the table nor the bucket holds anything
    assert_refused(case, answer["statusCode"], answer.get("headers") or {}, json.loads(answer["body"]))
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET)
