"""Bad input through the API Lambda's handler (API Gateway events, moto): each gets API.md's error body
with a 4xx, never the framework's own answer, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import BUCKET, TABLE
from tests.support.bad_input import BAD_INPUTS, JSON_TYPE, UPLOADS, BadInput, assert_refused
from tests.support.lambda_gateway import LambdaContext, api_handler, proxy_event


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


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known gap: a multipart blob's part URLs all come in the upload's answer (10,000 for a 5 TiB file, "
    "about 5.3 MB), so two such files make an answer over the 6 MB Lambda can return: AWS then answers 5xx. "
    "Needs part URLs paged, or a 413 before anything is written",
)
def test_an_upload_whose_answer_would_not_fit_in_a_lambda_answer_is_413_and_writes_nothing(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API function with S3's default part size, and two files of 5 TiB the store lacks
    monkeypatch.setenv("ARTREG_PART_SIZE", str(64 * 1024**2))
    handler = api_handler(monkeypatch, TABLE, BUCKET)
    files = [{"path": f"f{i}", "size": 5 * 1024**4 - 1, "sha256": f"{i:064x}"} for i in range(2)]
    # When the upload starts
    body = json.dumps({"files": files}).encode()
    answer = handler(proxy_event("POST", UPLOADS, JSON_TYPE, body), LambdaContext())
    # Then the answer fits what Lambda can return, and it is a 413 that wrote nothing
    assert len(answer["body"]) < 6 * 1024**2
    assert answer["statusCode"] == 413
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0
