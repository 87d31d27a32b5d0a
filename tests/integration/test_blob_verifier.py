"""Large multipart blobs on S3 are verified after the call that completes them (issue 11): the API has
29 s, so a blob over the inline bound is handed to the verifier function (an asynchronous invocation,
stood in for by tests/support/async_lambda.py), and a commit waits for it with `409 blobs_verifying`.
The rule of trust is the same as inline: bytes that are not the blob never commit, and their object
version is deleted. The bounds are tiny here (multipart over 8 MiB, inline up to 10 MiB)."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from artreg.aws.s3 import VERIFIED_TAG, VERIFYING_TAG, blob_key
from artreg.aws.verifier import LambdaVerification
from artreg.model.errors import Conflict, Invalid, NotFound
from artreg.model.wire import CompleteBlob, FileEntry, Part, StartUpload, UploadStarted
from artreg.registry.service import Committed
from tests.conftest import BUCKET, TABLE, Backend, aws_backend
from tests.support.async_lambda import AsyncLambda

P, N = "vision", "resnet"
MiB = 1024**2
LARGE = os.urandom(12 * MiB + 5)  # over the inline bound: verified by the verifier
SMALL = os.urandom(9 * MiB + 3)  # multipart, but within the inline bound


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def verifier(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncLambda]:
    """The verifier function's own handler (functions/verifier/app.py), imported once moto is in place,
    run for each asynchronous invocation after the invoking call returned."""
    for name, value in {
        "ARTREG_TABLE_NAME": TABLE,
        "ARTREG_BUCKET_NAME": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "artreg",
    }.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("functions.verifier.app", None)
    from artreg.aws import clients
    from artreg.settings import settings

    clients.s3_client.cache_clear()
    settings.cache_clear()
    function = AsyncLambda(importlib.import_module("functions.verifier.app").lambda_handler)
    yield function
    function.drain()
    settings.cache_clear()


@pytest.fixture
def s3(aws: dict[str, Any], verifier: AsyncLambda) -> Backend:
    start = LambdaVerification(verifier, "artreg-verifier")  # type: ignore[arg-type]
    return aws_backend(aws, inline_verify_limit=10 * MiB, start_verification=start)


def _start(backend: Backend, data: bytes, sha256: str | None = None) -> UploadStarted:
    files = [FileEntry(path="model.pt", size=len(data), sha256=sha256 or _sha(data))]
    started = backend.registry.start_upload(P, N, StartUpload(type="model", files=files))
    assert isinstance(started, UploadStarted)
    return started


def _complete(backend: Backend, started: UploadStarted, body: bytes) -> bool:
    """PUTs `body` as the one missing multipart blob and completes it: whether it is verified now."""
    [target] = started.missing
    assert target.multipart is not None
    backend.put_blob(target, body)
    size = target.multipart.part_size
    parts = [
        Part(part_number=p.part_number, etag=hashlib.md5(body[(p.part_number - 1) * size :][:size]).hexdigest())  # noqa: S324
        for p in target.multipart.parts
    ]
    return backend.registry.complete_blob(P, N, started.upload_id, target.sha256, CompleteBlob(parts=parts))


def _versions(aws: dict[str, Any], sha256: str) -> list[str]:
    listed = aws["s3"].list_object_versions(Bucket=BUCKET, Prefix=blob_key(P, sha256))
    return [v["VersionId"] for v in listed.get("Versions", [])]


def _served(backend: Backend, committed: Committed) -> bytes:
    [file] = backend.registry.download(P, N, committed.record.version).files
    return backend.fetch(file.url)


def test_a_large_blob_is_verified_after_its_completion_and_commits_once_verified(
    s3: Backend, verifier: AsyncLambda, aws: dict[str, Any]
) -> None:
    # Given a model over the inline bound, uploaded, with the verifier's run not started yet
    verifier.hold()
    started = _start(s3, LARGE)
    # When its upload is completed
    verified = _complete(s3, started, LARGE)
    # Then the completion answers at once, unverified, having invoked the verifier for the version it made
    assert verified is False
    [(function, event)] = verifier.invoked
    assert function == "artreg-verifier"
    assert event == {"project": P, "sha256": _sha(LARGE), "version_id": _versions(aws, _sha(LARGE))[0]}
    # And a commit meanwhile is told to wait, with how long and for which blob
    with pytest.raises(Conflict) as waiting:
        s3.registry.commit(P, N, started.upload_id)
    assert waiting.value.code == "blobs_verifying"
    assert waiting.value.retry_after is not None
    assert 5 <= waiting.value.retry_after <= 60
    assert [b["sha256"] for b in waiting.value.details["verifying"]] == [_sha(LARGE)]

    # When the verifier has run
    verifier.drain()
    # Then the commit goes through, serves the bytes, and the content is never sent again
    assert _served(s3, s3.registry.commit(P, N, started.upload_id)) == LARGE
    assert _start(s3, LARGE).missing == []


def test_other_bytes_of_a_large_blob_never_commit_and_an_honest_log_serves_the_real_ones(
    s3: Backend, verifier: AsyncLambda, aws: dict[str, Any]
) -> None:
    # Given a writer who uploads zeros of the right length under the SHA-256 of a real large model
    attack = _start(s3, LARGE)
    # When it completes them (the verifier runs afterwards) and commits
    assert _complete(s3, attack, bytes(len(LARGE))) is False
    verifier.drain()
    with pytest.raises(Conflict) as missing:
        s3.registry.commit(P, N, attack.upload_id)
    # Then the zeros' object version is gone and the blob is missing: nothing committed
    assert _versions(aws, _sha(LARGE)) == []
    assert missing.value.code == "blobs_missing"
    assert missing.value.details["missing"] == [{"sha256": _sha(LARGE), "size": len(LARGE)}]
    with pytest.raises(NotFound):
        s3.registry.get_artifact(P, N)

    # And an honest log of the real model afterwards sends it, commits once verified, and serves it
    honest = _start(s3, LARGE)
    assert [t.sha256 for t in honest.missing] == [_sha(LARGE)]
    _complete(s3, honest, LARGE)
    verifier.drain()
    assert _served(s3, s3.registry.commit(P, N, honest.upload_id)) == LARGE


def test_a_verification_that_went_stale_counts_as_missing_and_the_blob_is_sent_again(
    s3: Backend, verifier: AsyncLambda, aws: dict[str, Any]
) -> None:
    # Given a large model completed, whose verification never ran (its function gave up)
    verifier.hold()
    started = _start(s3, LARGE)
    _complete(s3, started, LARGE)
    key, [version] = blob_key(P, _sha(LARGE)), _versions(aws, _sha(LARGE))
    # and whose verifying mark is older than the window (an hour)
    stale = str(int(time.time()) - 2 * 3600)
    tagging = {"TagSet": [{"Key": VERIFYING_TAG, "Value": stale}]}
    aws["s3"].put_object_tagging(Bucket=BUCKET, Key=key, VersionId=version, Tagging=tagging)

    # When it is committed / Then the blob is missing, not being verified
    with pytest.raises(Conflict) as missing:
        s3.registry.commit(P, N, started.upload_id)
    assert missing.value.code == "blobs_missing"
    # And a new log sends it again, which starts a new verification, and commits once that ran
    again = _start(s3, LARGE)
    assert [t.sha256 for t in again.missing] == [_sha(LARGE)]
    assert _complete(s3, again, LARGE) is False
    assert len(verifier.invoked) == 2
    verifier.drain()
    assert _served(s3, s3.registry.commit(P, N, again.upload_id)) == LARGE


def test_blobs_missing_wins_over_blobs_verifying(s3: Backend, verifier: AsyncLambda) -> None:
    # Given an upload of two files: a large one completed (being verified), a small one never sent
    verifier.hold()
    files = [
        FileEntry(path="model.pt", size=len(LARGE), sha256=_sha(LARGE)),
        FileEntry(path="config.json", size=2, sha256=_sha(b"{}")),
    ]
    started = s3.registry.start_upload(P, N, StartUpload(type="model", files=files))
    assert isinstance(started, UploadStarted)
    large = next(t for t in started.missing if t.multipart)
    _complete(s3, started.model_copy(update={"missing": [large]}), LARGE)
    # When it is committed / Then the client is told what to send, not to wait
    with pytest.raises(Conflict) as missing:
        s3.registry.commit(P, N, started.upload_id)
    assert missing.value.code == "blobs_missing"
    assert missing.value.details["missing"] == [{"sha256": _sha(b"{}"), "size": 2}]


def test_a_multipart_blob_within_the_inline_bound_is_verified_in_the_completing_call(
    s3: Backend, verifier: AsyncLambda, aws: dict[str, Any]
) -> None:
    # Given a multipart model within the inline bound
    started = _start(s3, SMALL)
    # When its upload is completed / Then it is verified at once, with no verifier run, and commits
    assert _complete(s3, started, SMALL) is True
    assert verifier.invoked == []
    tags = aws["s3"].get_object_tagging(Bucket=BUCKET, Key=blob_key(P, _sha(SMALL)))["TagSet"]
    assert tags == [{"Key": VERIFIED_TAG, "Value": _sha(SMALL)}]
    assert _served(s3, s3.registry.commit(P, N, started.upload_id)) == SMALL
    # And other bytes within the bound are refused by the completion itself, as before
    other = os.urandom(len(SMALL))
    attack = _start(s3, other, _sha(other + b"!"))
    with pytest.raises(Invalid) as refused:
        _complete(s3, attack, other)
    assert refused.value.code == "bad_digest"


def test_the_verifier_settles_a_version_once(s3: Backend, verifier: AsyncLambda, aws: dict[str, Any]) -> None:
    # Given a large model verified by the verifier
    started = _start(s3, LARGE)
    _complete(s3, started, LARGE)
    verifier.drain()
    [(_, event)] = verifier.invoked
    # When Lambda runs the same event again (a retry after a run whose answer was lost)
    again = importlib.import_module("functions.verifier.app").lambda_handler(event, _Context())
    # Then it finds the version verified already and leaves it so
    assert again == {"outcome": "verified"}
    assert _served(s3, s3.registry.commit(P, N, started.upload_id)) == LARGE


class _Context:
    function_name = "artreg-verifier"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:artreg-verifier"
    aws_request_id = "req-2"
