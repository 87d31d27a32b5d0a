"""Bad input through the API Lambda's handler (API Gateway events, moto): each gets API.md's error body
with a 4xx, never the framework's own answer, and nothing is written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.api.app import build_app
from tests.conftest import BUCKET, TABLE, api_event, aws_backend, local_backend
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


TOO_LARGE = BadInput("two 5 TiB files", "POST", UPLOADS, b"", JSON_TYPE, 413, "too_large")


def _huge(count: int) -> list[dict[str, Any]]:
    return [{"path": f"f{i}", "size": 5 * 1024**4 - 1, "sha256": f"{i:064x}"} for i in range(count)]


def test_an_upload_whose_answer_would_not_fit_in_a_lambda_answer_is_413_and_writes_nothing(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API function with S3's default part size, and two files of 5 TiB the store lacks
    monkeypatch.setenv("ARTREG_PART_SIZE", str(64 * 1024**2))
    handler = api_handler(monkeypatch, TABLE, BUCKET)
    # When the upload starts
    body = json.dumps({"files": _huge(2)}).encode()
    answer = handler(proxy_event("POST", UPLOADS, JSON_TYPE, body), LambdaContext())
    # Then the answer fits what Lambda can return, and it is a 413 in API.md's shape, saying what to do
    assert len(answer["body"]) < 6 * 1024**2
    error = json.loads(answer["body"])
    assert_refused(TOO_LARGE, answer["statusCode"], answer.get("headers") or {}, error)
    assert "fewer large files" in error["error"]["message"]
    assert error["error"]["details"] == {"limit": 2_000, "count": 2 * 2_000}
    # and it wrote nothing: no upload item, no object, no multipart upload opened
    assert aws["dynamodb"].scan(TableName=TABLE)["Count"] == 0
    assert "Contents" not in aws["s3"].list_objects_v2(Bucket=BUCKET)
    assert "Uploads" not in aws["s3"].list_multipart_uploads(Bucket=BUCKET)


def test_the_answer_for_the_largest_blob_fits_a_lambda_answer_when_signed_with_a_session_token(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API function signing with a Lambda's credentials (a session token of about a kilobyte:
    # each URL about 1.7 kB), at S3's default part size
    token = "IQoJb3JpZ2luX2VjE" + "A" * 1200
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    monkeypatch.setenv("AWS_SECURITY_TOKEN", token)  # botocore reads this older name first
    monkeypatch.setenv("ARTREG_PART_SIZE", str(64 * 1024**2))
    handler = api_handler(monkeypatch, TABLE, BUCKET)
    # When an upload of one file of 5 TiB, the largest S3 object, starts
    body = json.dumps({"files": _huge(1)}).encode()
    answer = handler(proxy_event("POST", UPLOADS, JSON_TYPE, body), LambdaContext())
    # Then its parts are large enough for their URLs to fit what Lambda can return (6 MB)
    assert answer["statusCode"] == 201, answer["body"][:500]
    [target] = json.loads(answer["body"])["missing"]
    parts = target["multipart"]["parts"]
    assert min(len(p["url"]) for p in parts) >= 1700
    assert len(parts) == 2_000
    assert target["multipart"]["part_size"] == 2622 * 1024**2
    assert len(answer["body"]) < 6 * 1000**2


@pytest.mark.parametrize("backend_name", ["aws", "local"])
def test_files_whose_part_urls_would_not_fit_one_answer_are_413_on_either_back_end(
    request: pytest.FixtureRequest, tmp_path: Path, backend_name: str
) -> None:
    # Given either back end (5 MiB parts) and an upload started with one small file
    backend = local_backend(tmp_path) if backend_name == "local" else aws_backend(request.getfixturevalue("aws"))
    app = build_app(backend.registry, caller=lambda _: None)

    def call(path: str, files: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        answer = app.resolve(api_event("POST", path, body={"files": files}), LambdaContext())
        return answer["statusCode"], answer.get("headers") or {}, json.loads(answer["body"])

    small = {"path": "small", "size": 1, "sha256": "f" * 64}
    status, _, started = call(UPLOADS, [small])
    assert status == 201, started
    stored = backend.blob_keys()
    # When the upload starts with two files of 5 TiB, or they are added to the started one
    refused = [call(UPLOADS, [small, *_huge(2)]), call(f"{UPLOADS}/{started['upload_id']}/files", _huge(2))]
    # Then both are a 413 in API.md's shape, and nothing was written: one upload, with the small file only
    for status, headers, error in refused:
        assert_refused(TOO_LARGE, status, headers, error)
        assert error["error"]["details"]["limit"] == 2_000
    [upload] = backend.registry.store.pending_uploads("vision", datetime.now(UTC), timedelta(days=1))
    assert [e.path for e in upload.entries] == ["small"]
    assert upload.missing == ["f" * 64]
    assert backend.blob_keys() == stored
    if backend_name == "aws":
        assert "Uploads" not in request.getfixturevalue("aws")["s3"].list_multipart_uploads(Bucket=BUCKET)
