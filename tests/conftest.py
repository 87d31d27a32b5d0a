"""Fixtures shared by the suites: the two back ends behind one `Backend` face, and API Gateway
(HTTP API, payload 2.0) proxy events for the real handler."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, settings

from artreg.model.wire import FileEntry, MissingBlob, Part, StartUpload
from artreg.registry.policy import Policy
from artreg.registry.service import Committed, RegistryService
from tests.support.moto_resources import FAKE_CREDENTIALS, registry_resources

TABLE = "artreg-test"
BUCKET = "artreg-test-blobs"
FAST = Policy(backoff_base_s=0.001, backoff_cap_s=0.02)

# no real AWS account is ever reached from a test
os.environ.update(FAKE_CREDENTIALS)

# Hypothesis profiles. "ci" (HYPOTHESIS_PROFILE=ci, or CI=true) runs the same fixed, bounded examples on
# every run, with no per-example deadline or slowness check: a loaded runner must not fail a correct
# test, and a failure must reproduce. "dev", the default, searches afresh each run, also without the
# deadline (this machine is shared by many jobs). A test's own @settings (more examples) still wins.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI", "").lower() in {"true", "1"} else "dev")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`./scripts/test` runs the suite on two pytest-xdist workers (`--dist loadgroup`), each test where
    a worker is free, the slow ones first. Tests that share a module- or session-scoped fixture of this
    suite (a server, a browser, a translated template) go to one worker as a group, so that the fixture
    is made once: the UI's tests as one group (one browser, one seeding), the others by module."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else ()
        # the suite's own (not pytest's, such as tmp_path_factory; not the cheap autouse ones here)
        shared = [
            definition
            for chain in definitions
            for definition in chain[-1:]
            if definition.scope in ("module", "session")
            and definition.baseid.startswith("tests")
            and not definition.argname.startswith("_")
        ]
        if not shared:
            continue
        in_ui = item.path.is_relative_to(Path(__file__).parent / "ui")
        item.add_marker(pytest.mark.xdist_group("ui" if in_ui else item.nodeid.split("::", 1)[0]))
    # the slow tests first (a stable sort: the rest keep their order), so that the workers share them out
    # rather than one worker running the last minute-long test alone while the other waits
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True, scope="session")
def _no_fsync_in_this_process() -> Iterator[None]:
    """The folder blob store makes its blobs durable (a syncfs before each commit, or an fsync each):
    across a power loss, which no test can cause, and on a shared disk ms each. Off in this process
    only: `artreg server`, which the end-to-end tests run as a subprocess, still syncs."""
    from artreg.local import blob_files

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        patch.setattr(blob_files, "SYNCFS", None)
        yield


@dataclass
class Backend:
    name: str
    registry: RegistryService
    put_blob: Callable[[MissingBlob, bytes], None]
    fetch: Callable[[str], bytes]  # the bytes behind a download URL
    blob_keys: Callable[[], list[str]]  # every stored object/file, to check nothing escaped
    # stores a blob as its PUT would, for tests whose subject is not the upload (None: put_blob)
    seed_blob: Callable[[str, MissingBlob, bytes], None] | None = None

    def store(self, project: str, target: MissingBlob, data: bytes) -> None:
        if self.seed_blob and not target.multipart:
            self.seed_blob(project, target, data)
        else:
            self.put_blob(target, data)

    def log(
        self, project: str, name: str, files: dict[str, bytes], *, caller: str = "tester", **request: Any
    ) -> Committed:
        """What a client does: start, PUT what is missing, commit."""
        sha256 = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
        entries = [FileEntry(path=path, size=len(data), sha256=sha256[path]) for path, data in files.items()]
        started = self.registry.start_upload(project, name, StartUpload(files=entries, **request), caller=caller)
        if isinstance(started, Committed):
            return started
        by_sha = {sha256[path]: data for path, data in files.items()}
        for target in started.missing:
            self.put_blob(target, by_sha[target.sha256])
        return self.registry.commit(project, name, started.upload_id, caller=caller)

    def part_etags(self, target: MissingBlob, data: bytes) -> list[Part]:
        """The parts a client completes the multipart upload of `target` with, once `data` is PUT: the
        ETag each part's PUT answered (S3's is the MD5 of the part's bytes; the folder store's is opaque)."""
        assert target.multipart is not None, "only a multipart upload has parts"
        if self.name == "local":
            from tests.support.folder_blobs import parts_of

            return parts_of(target)
        size = target.multipart.part_size
        return [
            Part(
                part_number=p.part_number,
                etag='"' + hashlib.md5(data[(p.part_number - 1) * size : p.part_number * size]).hexdigest() + '"',  # noqa: S324
            )
            for p in target.multipart.parts
        ]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files that the SDK's hashing opens (`files.hash_file`), in order."""
    from artreg.client import files

    opened: list[str] = []
    real = files.hash_file

    def counting(source: str | os.PathLike[str], *args: object, **kwargs: object) -> tuple[str, int]:
        opened.append(os.fspath(source))
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "hash_file", counting)
    return opened


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto with the table, bucket and bus built from template.yaml's own properties."""
    with registry_resources(TABLE, BUCKET, shared_clients=True) as resources:
        yield resources


@pytest.fixture
def aws_load() -> Iterator[dict[str, Any]]:
    """The same, for tests of hundreds of commits (see registry_resources)."""
    with registry_resources(TABLE, BUCKET, load=True, shared_clients=True) as resources:
        yield resources


def aws_backend(aws: dict[str, Any], *, conflict_rate: float = 0.0, policy: Policy = FAST, **store: Any) -> Backend:
    """`store`: further options of the S3 blob store (the inline bound and the verifier's start)."""
    from artreg.aws.dynamodb import DynamoStore
    from artreg.aws.s3 import S3BlobStore
    from tests.support.moto_serial import SerialisedClient

    s3 = aws["s3"]
    metadata = DynamoStore(SerialisedClient(aws["dynamodb"], conflict_rate=conflict_rate), TABLE)  # type: ignore[arg-type]
    registry = RegistryService(
        metadata,
        S3BlobStore(s3, BUCKET, multipart_threshold=8 * 1024**2, part_size=5 * 1024**2, **store),
        policy=policy,
    )

    def put_blob(target: MissingBlob, data: bytes) -> None:
        if target.multipart:
            size = target.multipart.part_size
            for part in target.multipart.parts:
                chunk = data[(part.part_number - 1) * size : part.part_number * size]
                requests.put(part.url, data=chunk, timeout=10).raise_for_status()
            return
        assert target.url
        requests.put(target.url, data=data, headers=target.headers, timeout=10).raise_for_status()

    def fetch(url: str) -> bytes:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return response.content

    def blob_keys() -> list[str]:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def seed_blob(project: str, target: MissingBlob, data: bytes) -> None:
        """The object a presigned PUT leaves (with the SHA-256 checksum S3 checked and keeps, as the
        checksum fixture does), put by moto's S3 back end itself: a PUT over HTTP takes ~10 ms on moto,
        most of a test of thousands of blobs."""
        import base64
        import hashlib

        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        from artreg.aws.s3 import blob_key

        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        key = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(
            BUCKET, blob_key(project, target.sha256), data, checksum_value=checksum
        )
        key.checksum_algorithm = "SHA256"

    return Backend("aws", registry, put_blob, fetch, blob_keys, seed_blob)


def local_backend(root: Path, policy: Policy = FAST, *, file_roots: Sequence[Path] | None = None) -> Backend:
    """`file_roots`: where `file://` references may be pinned from; by default the test's own folder."""
    from artreg.local.blobs import FolderBlobStore
    from artreg.local.sqlite_store import SqliteStore
    from tests.support.folder_blobs import fetch, put_blob

    blobs = FolderBlobStore(
        root / "blobs",
        base_url="http://127.0.0.1:0",
        multipart_threshold=8 * 1024**2,
        part_size=5 * 1024**2,
        file_roots=[root] if file_roots is None else file_roots,
    )
    registry = RegistryService(SqliteStore(root / "registry.db"), blobs, policy=policy)

    def blob_keys() -> list[str]:
        return [str(p.relative_to(root / "blobs")) for p in (root / "blobs").rglob("*") if p.is_file()]

    return Backend("local", registry, lambda t, d: put_blob(blobs, t, d), lambda url: fetch(blobs, url), blob_keys)


@pytest.fixture(params=["aws", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "aws":
        return aws_backend(request.getfixturevalue("aws"))
    return local_backend(tmp_path)


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    caller: str = "arn:aws:sts::123456789012:assumed-role/train/job-7",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) proxy event, as API Gateway sends it with IAM auth."""
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": {
                "iam": {"accessKey": "AKIA", "accountId": "123456789012", "userArn": caller, "userId": "AROA"}
            },
            "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "req-1",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795341600000,
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }
