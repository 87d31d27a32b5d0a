"""The S3 permissions of the API, janitor and verifier roles are exactly what their code calls, under AWS's
documented authorization of each operation (moto checks no IAM, so a missing grant would only show
on AWS): every S3 call of a run of each role's code is recorded, turned into the IAM actions AWS asks
for it, and compared with the role's statements in template.yaml, resource by resource.

Notable: HEAD answers `TagCount` only to a caller allowed s3:GetObjectTagging, and the registry's
blob protocol reads it (condemnations and re-hash marks are tags), so every role that HEADs a blob
must hold it. https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from artreg.aws.s3 import S3BlobStore
from artreg.model.errors import Conflict, Invalid
from artreg.model.wire import CompleteBlob, FileEntry, Part, StartUpload, UploadStarted
from artreg.registry.janitor import Janitor
from tests.conftest import BUCKET, FAST, Backend, aws_backend
from tests.support.template import load_template

P, N = "vision", "resnet"
BIG = bytes(range(256)) * (9 * 4096)  # over the test back end's multipart threshold
Call = tuple[str, str]  # (IAM action, resource ARN)

# The IAM action AWS authorizes each operation by (the S3 API reference, "Permissions"); an operation
# on one version of an object is authorized by the action's `Version` form.
_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObject": "s3:DeleteObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListObjectsV2": "s3:ListBucket",
}
_VERSIONED = {"s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObject"}


def _needed(operation: str, params: dict[str, Any]) -> set[Call]:
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if operation == "ListObjectsV2":
        return {("s3:ListBucket", bucket)}
    action = _ACTIONS[operation]
    if "VersionId" in params and action in _VERSIONED:
        action = action.replace("Object", "ObjectVersion", 1)
    needed = {(action, f"{bucket}/{params['Key']}")}
    if operation == "HeadObject":
        # a missing key answers 404 (not 403) only with ListBucket; TagCount only with GetObjectTagging
        needed |= {("s3:ListBucket", bucket), ("s3:GetObjectTagging", f"{bucket}/{params['Key']}")}
    return needed


@contextmanager
def _recording(client: Any) -> Iterator[set[Call]]:
    """Every S3 call and presigned URL the client makes, as the IAM actions AWS authorizes it by."""
    calls: set[Call] = set()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.update(_needed(model.name, params))

    client.meta.events.register("provide-client-params.s3.*", record)
    try:
        yield calls
    finally:
        client.meta.events.unregister("provide-client-params.s3.*", record)


def _granted(function: str) -> list[tuple[set[str], list[str]]]:
    """The role's S3 statements on the registry's bucket: (actions, resource patterns)."""
    granted = []
    for policy in load_template()["Resources"][function]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if "Fn::If" in statement:
                continue  # remote references, in other buckets, given by a parameter
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            arns = [_arn(r) for r in resources]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("s3:") for a in actions) and all(arns):
                granted.append((set(actions), [a for a in arns if a]))
    return granted


def _arn(resource: Any) -> str | None:
    if resource == {"Fn::GetAtt": ["Bucket", "Arn"]}:
        return f"arn:aws:s3:::{BUCKET}"
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"]).replace("${Bucket.Arn}", f"arn:aws:s3:::{BUCKET}")
    return None


def _allows(granted: list[tuple[set[str], list[str]]], call: Call) -> bool:
    action, arn = call
    return any(
        action in actions and any(fnmatch.fnmatchcase(arn, p) for p in patterns) for actions, patterns in granted
    )


def _unused(granted: list[tuple[set[str], list[str]]], calls: set[Call]) -> list[tuple[str, str]]:
    return [
        (action, pattern)
        for actions, patterns in granted
        for action in sorted(actions)
        for pattern in patterns
        if not any(a == action and fnmatch.fnmatchcase(arn, pattern) for a, arn in calls)
    ]


def _start(backend: Backend, data: bytes) -> UploadStarted:
    files = [FileEntry(path="f", size=len(data), sha256=hashlib.sha256(data).hexdigest())]
    started = backend.registry.start_upload(P, N, StartUpload(files=files))
    assert isinstance(started, UploadStarted)
    return started


def _complete(backend: Backend, started: UploadStarted, body: bytes) -> None:
    for target in started.missing:
        backend.put_blob(target, body)
        if target.multipart:
            size = target.multipart.part_size
            parts = [
                Part(part_number=p.part_number, etag=hashlib.md5(body[(p.part_number - 1) * size :][:size]).hexdigest())  # noqa: S324
                for p in target.multipart.parts
            ]
            backend.registry.complete_blob(P, N, started.upload_id, target.sha256, CompleteBlob(parts=parts))


def _api_run(backend: Backend) -> Callable[[], None]:
    return partial(_api_calls, backend)


def _api_calls(backend: Backend) -> None:
    """What the API does with S3: uploads small and multipart, a refused multipart completion, a
    completion of a blob stored meanwhile, commits, dedup against a re-hashed blob, downloads."""
    stale = _start(backend, BIG)
    refused = _start(backend, BIG)
    with pytest.raises(Invalid):
        _complete(backend, refused, bytes(len(BIG)))
    for data in (b"small", BIG):
        started = _start(backend, data)
        _complete(backend, started, data)
        backend.registry.commit(P, N, started.upload_id)
    _complete(backend, stale, BIG)  # stored meanwhile: its parts are dropped
    assert _start(backend, BIG).missing == []
    backend.registry.download(P, N, "latest")
    with pytest.raises(Conflict):
        backend.registry.commit(P, N, _start(backend, b"never sent").upload_id)
    # a blob over the inline bound: marked as being verified, and handed to the verifier
    store = backend.registry.blobs
    assert isinstance(store, S3BlobStore)
    store.inline_verify_limit, store.start_verification = 0, lambda *event: None
    _complete(backend, _start(backend, BIG[::-1]), BIG[::-1])


def _janitor_run(backend: Backend) -> Callable[[], None]:
    """What the janitor does with S3, after the API made the work: aborts an expired multipart upload,
    condemns a blob no version lists, and reclaims it a run later."""
    _start(backend, BIG)
    for files in ({"old": b"old"}, {"a": b"a", "b": b"b"}):  # the second's manifest is a chunk in S3
        entries = [FileEntry(path=k, size=len(v), sha256=hashlib.sha256(v).hexdigest()) for k, v in files.items()]
        started = backend.registry.start_upload(P, N, StartUpload(files=entries))
        assert isinstance(started, UploadStarted)
        for target in started.missing:
            backend.put_blob(target, next(v for v in files.values() if hashlib.sha256(v).hexdigest() == target.sha256))
        backend.registry.commit(P, N, started.upload_id)
    backend.registry.delete_version(P, N, "1.0.0")

    class Later:
        def __init__(self, days: float) -> None:
            self.days = days

        def now(self) -> datetime:
            return datetime.now(UTC) + timedelta(days=self.days)

    store, blobs = backend.registry.store, backend.registry.blobs

    def calls() -> None:
        Janitor(store, blobs, clock=Later(2)).expire_uploads()
        Janitor(store, blobs, clock=Later(8)).reclaim_blobs(timedelta(days=7), timedelta(days=1))
        assert Janitor(store, blobs, clock=Later(9)).reclaim_blobs(timedelta(days=7), timedelta(days=1)).reclaimed == 1

    return calls


def _verifier_run(backend: Backend) -> Callable[[], None]:
    """What the verifier does with S3, once the API handed it two large blobs (every multipart blob is
    large here): one whose bytes are the blob (tagged verified), one whose bytes are not (its version
    deleted); each event run twice, as Lambda runs a retried invocation."""
    store = backend.registry.blobs
    assert isinstance(store, S3BlobStore)
    events: list[tuple[str, str, str]] = []
    store.inline_verify_limit = 0
    store.start_verification = lambda *event: events.append(event)
    _complete(backend, _start(backend, BIG), BIG)
    claimed = BIG[::-1]  # its SHA-256 claimed, zeros sent
    files = [FileEntry(path="g", size=len(claimed), sha256=hashlib.sha256(claimed).hexdigest())]
    forged = backend.registry.start_upload(P, N, StartUpload(files=files))
    assert isinstance(forged, UploadStarted)
    _complete(backend, forged, bytes(len(claimed)))
    verifier = S3BlobStore(store.client, store.bucket)  # the verifier function's (artreg.aws.clients)

    def calls() -> None:
        assert [verifier.settle(*event) for event in events * 2] == ["verified", "deleted", "verified", "gone"]

    return calls


@pytest.mark.parametrize(
    ("function", "run"),
    [("ApiFunction", _api_run), ("JanitorFunction", _janitor_run), ("VerifierFunction", _verifier_run)],
)
def test_the_role_allows_exactly_the_s3_calls_of_its_code(aws: dict[str, Any], function: str, run: Any) -> None:
    # Given the role's statements, and a run of its code on S3 with every call recorded
    granted = _granted(function)
    act = run(aws_backend(aws, policy=replace(FAST, inline_entries=1, chunk_entries=1)))
    with _recording(aws["s3"]) as calls:
        act()

    # Then every call is allowed, and every grant is used
    assert [c for c in sorted(calls) if not _allows(granted, c)] == []
    assert _unused(granted, calls) == []
