"""No poisoned blob: on both back ends (S3 with the checksum behaviour of tests/support/s3_checksums.py),
a blob is trusted only when its bytes are known to have its SHA-256, so a writer cannot store other
bytes under the address of real content, and a later honest log stores and serves the real bytes."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

import pytest
import requests

from artreg.model.errors import Conflict, Invalid, NotFound
from artreg.model.wire import CompleteBlob, FileEntry, StartUpload, UploadStarted
from artreg.registry.service import Committed
from tests.conftest import Backend

P, N = "vision", "resnet"
REAL = os.urandom(9 * 1024**2 + 7)  # over the test back ends' 8 MiB multipart threshold: 2 parts
ZEROS = bytes(len(REAL))
SHA = hashlib.sha256(REAL).hexdigest()


def _start(backend: Backend, sha256: str = SHA, size: int = len(REAL)) -> UploadStarted:
    files = [FileEntry(path="model.pt", size=size, sha256=sha256)]
    started = backend.registry.start_upload(P, N, StartUpload(type="model", files=files))
    assert isinstance(started, UploadStarted)
    return started


def _send(backend: Backend, started: UploadStarted, body: bytes) -> None:
    """PUTs `body` as every missing blob's bytes and completes the multipart ones."""
    for target in started.missing:
        backend.put_blob(target, body)
        if target.multipart:
            backend.registry.complete_blob(
                P, N, started.upload_id, target.sha256, CompleteBlob(parts=backend.part_etags(target, body))
            )


def _served(backend: Backend, committed: Committed) -> bytes:
    [file] = backend.registry.download(P, N, committed.record.version).files
    return backend.fetch(file.url)


def _honest_log(backend: Backend) -> Committed:
    started = _start(backend)
    assert [t.sha256 for t in started.missing] == [SHA], "the real content must be sent"
    _send(backend, started, REAL)
    return backend.registry.commit(P, N, started.upload_id)


def test_a_multipart_blob_of_other_bytes_never_commits_and_a_later_honest_log_serves_the_real_bytes(
    backend: Backend,
) -> None:
    # Given a writer who uploads zeros of the same length under the SHA-256 of a real model
    attack = _start(backend)
    [target] = attack.missing
    assert target.multipart is not None
    backend.put_blob(target, ZEROS)

    # When it completes the parts and commits
    with pytest.raises(Invalid) as refused:
        backend.registry.complete_blob(
            P, N, attack.upload_id, SHA, CompleteBlob(parts=backend.part_etags(target, ZEROS))
        )
    with pytest.raises(Conflict) as missing:
        backend.registry.commit(P, N, attack.upload_id)

    # Then the zeros were refused and nothing committed
    assert refused.value.code == "bad_digest"
    assert missing.value.code == "blobs_missing"
    assert missing.value.details["missing"] == [{"sha256": SHA, "size": len(REAL)}]

    # And an honest log of the real model afterwards sends it, commits, and serves the real bytes
    assert _served(backend, _honest_log(backend)) == REAL


def test_a_stale_multipart_upload_cannot_replace_a_stored_blob(backend: Backend) -> None:
    # Given a writer who started an upload of the real model's address and kept its multipart upload
    attack = _start(backend)
    [target] = attack.missing
    # And the real model logged meanwhile
    honest = _honest_log(backend)

    # When the writer sends zeros to its old parts and completes them (locally the honest log, of the
    # same content, took over and completed that multipart upload: its parts are refused as gone)
    with contextlib.suppress(NotFound):
        backend.put_blob(target, ZEROS)
    with contextlib.suppress(Invalid, NotFound):  # refused, or answered as done: the blob is stored already
        backend.registry.complete_blob(
            P, N, attack.upload_id, SHA, CompleteBlob(parts=backend.part_etags(target, ZEROS))
        )

    # Then the honest version still serves the real bytes, and so does the writer's, if it commits
    assert _served(backend, honest) == REAL
    with contextlib.suppress(Conflict):
        assert _served(backend, backend.registry.commit(P, N, attack.upload_id)) == REAL


# ---------------------------------------------------------------- S3 only


@pytest.fixture
def s3(aws: dict[str, Any]) -> Backend:
    from tests.conftest import aws_backend

    return aws_backend(aws)


def test_s3_refuses_a_single_put_of_other_bytes(s3: Backend) -> None:
    # Given an upload of a small file
    data = b"weights"
    started = _start(s3, hashlib.sha256(data).hexdigest(), len(data))
    [target] = started.missing
    assert target.url

    # When other bytes of the same length are PUT to its URL with its headers
    answer = requests.put(target.url, data=b"WEIGHTS", headers=target.headers, timeout=10)

    # Then S3 refuses them, and the commit finds the blob missing
    assert answer.status_code == 400
    with pytest.raises(Conflict) as missing:
        s3.registry.commit(P, N, started.upload_id)
    assert missing.value.code == "blobs_missing"


def test_an_object_without_a_checksum_is_not_trusted(s3: Backend, aws: dict[str, Any]) -> None:
    # Given zeros stored at the real model's address by something else than the registry's URLs
    from artreg.aws.s3 import blob_key
    from tests.conftest import BUCKET

    aws["s3"].put_object(Bucket=BUCKET, Key=blob_key(P, SHA), Body=ZEROS)

    # When the real model is logged / Then it is sent again, and its bytes are what is served
    assert _served(s3, _honest_log(s3)) == REAL


def test_a_blob_the_registry_re_hashed_is_not_sent_again(s3: Backend) -> None:
    # Given the real model logged once (a multipart blob)
    _honest_log(s3)

    # When it is logged again / Then nothing is missing: the re-hash was recorded
    assert _start(s3).missing == []
