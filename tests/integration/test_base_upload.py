"""An upload that starts from a committed version (`base`): the new version is the base's entries with
the upload's changes, its digest what a full upload of the same files gives, and bad input a 4xx that
writes nothing. Each test runs on DynamoDB (moto) and on SQLite, with a manifest small enough per
record and chunk that a base of a few files is kept in chunks, as one of 100,000 files is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from artreg.api.app import build_app
from artreg.model import manifest
from artreg.model.errors import Conflict, Invalid, NotFound
from artreg.model.wire import AddFiles, BaseRef, FileEntry, StartUpload, UploadStarted, VersionRecord
from artreg.registry import manifests
from artreg.registry.policy import Policy
from artreg.registry.service import Committed
from tests.conftest import FAST, Backend, api_event, aws_backend, local_backend
from tests.support.lambda_context import LambdaContext

P, N = "vision", "shards"
SMALL = Policy(backoff_base_s=FAST.backoff_base_s, backoff_cap_s=FAST.backoff_cap_s, inline_entries=3, chunk_entries=2)
FILES = {f"part/{i:02d}.bin": f"content {i}".encode() for i in range(9)}


@pytest.fixture(params=["aws", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "aws":
        return aws_backend(request.getfixturevalue("aws"), policy=SMALL)
    return local_backend(tmp_path, policy=SMALL)


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def based(version: VersionRecord) -> BaseRef:
    return BaseRef(version=version.version, digest=version.digest)


def all_entries(backend: Backend, version: str) -> list[FileEntry]:
    found: list[Any] = []
    cursor = None
    while True:
        page = backend.registry.list_files(P, N, version, limit=4, cursor=cursor)
        found += page.items
        if not (cursor := page.next_cursor):
            return found


def head_state(backend: Backend) -> Any:
    head = backend.registry.store.get_head(P, N)
    return head and (head.revision, head.latest, head.version_count)


def call(backend: Backend, method: str, path: str, body: Any) -> tuple[int, Any]:
    app = build_app(backend.registry, caller=lambda _: None)
    result = app.resolve(api_event(method, path, body=body), LambdaContext())
    return result["statusCode"], json.loads(result["body"])


def test_a_base_upload_sends_only_the_changes_and_gives_the_digest_of_a_full_upload(backend: Backend) -> None:
    # Given a version of nine files, kept in chunks
    first = backend.log(P, N, FILES).record
    assert first.files_truncated
    # When the next version is logged from it: one file changed, one added, one removed
    changed = {"part/04.bin": b"new content 4", "part/99.bin": b"added"}
    started = backend.registry.start_upload(
        P,
        N,
        StartUpload(files=[entry(p, d) for p, d in changed.items()], base=based(first), remove=["part/07.bin"]),
    )
    assert isinstance(started, UploadStarted)
    # Then only the new blobs are asked for
    assert sorted(m.sha256 for m in started.missing) == sorted(hashlib.sha256(d).hexdigest() for d in changed.values())
    for target in started.missing:
        backend.put_blob(target, {hashlib.sha256(d).hexdigest(): d for d in changed.values()}[target.sha256])
    second = backend.registry.commit(P, N, started.upload_id).record
    # And the version holds the base's files with those changes, in path order
    expected = {**{p: d for p, d in FILES.items() if p != "part/07.bin"}, **changed}
    assert all_entries(backend, "2.0.0") == [entry(p, expected[p]) for p in sorted(expected)]
    assert (second.version, second.file_count, second.size) == ("2.0.0", 9, sum(map(len, expected.values())))
    # And its digest is the one a full upload of the same files gives
    assert second.digest == manifest.digest([entry(p, d) for p, d in expected.items()])
    assert backend.log(P, N, expected).record.digest == second.digest
    # And the base is unchanged
    assert all_entries(backend, "1.0.0") == [entry(p, FILES[p]) for p in sorted(FILES)]


def test_changes_sent_in_a_later_batch_replace_entries_of_the_base(backend: Backend) -> None:
    # Given a version, and a base upload whose first request changes nothing
    first = backend.log(P, N, FILES).record
    started = backend.registry.start_upload(P, N, StartUpload(base=based(first), remove=["part/00.bin"]))
    assert isinstance(started, UploadStarted)
    # When a further batch replaces a file of the base, and the upload is committed
    added = backend.registry.add_files(P, N, started.upload_id, AddFiles(files=[entry("part/08.bin", b"eight")]))
    backend.put_blob(added.missing[0], b"eight")
    backend.registry.commit(P, N, started.upload_id)
    # Then the version has the replacement and lacks the removed path
    entries = {e.path: e for e in all_entries(backend, "2.0.0")}
    assert sorted(entries) == sorted(set(FILES) - {"part/00.bin"})
    assert entries["part/08.bin"] == entry("part/08.bin", b"eight")


def test_a_base_upload_without_changes_and_if_changed_answers_the_base(backend: Backend) -> None:
    # Given a version
    first = backend.log(P, N, FILES).record
    # When an upload from it with no change is committed at once with if_changed
    answer = backend.registry.start_upload(P, N, StartUpload(base=based(first), commit=True, if_changed=True))
    # Then the answer is the base, and no version was made
    assert isinstance(answer, Committed)
    assert (answer.created, answer.record.version) == (False, "1.0.0")
    assert head_state(backend)[2] == 1


def chunk_reads(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The index of each manifest chunk read from the blob store from now on."""
    reads: list[int] = []
    blobs: Any = backend.registry.blobs
    read = blobs.get_manifest_chunk

    def counted(project: str, digest: str, index: int) -> list[Any]:
        reads.append(index)
        return read(project, digest, index)  # type: ignore[no-any-return]

    monkeypatch.setattr(blobs, "get_manifest_chunk", counted)
    return reads


def test_an_if_changed_upload_from_latest_reads_the_base_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a version of nine files, latest, kept in five chunks of two
    first = backend.log(P, N, FILES).record
    reads = chunk_reads(backend, monkeypatch)
    # When an upload from it that changes one file is started with if_changed, all its changes in one request
    changed = entry("part/04.bin", b"new content 4")
    started = backend.registry.start_upload(
        P, N, StartUpload(files=[changed], base=based(first), commit=True, if_changed=True)
    )
    # Then it goes on (its blob is missing) having read only the chunk where the change falls
    assert isinstance(started, UploadStarted)
    assert reads == [2]
    # When its blob is sent and it is committed
    reads.clear()
    backend.put_blob(started.missing[0], b"new content 4")
    second = backend.registry.commit(P, N, started.upload_id).record
    # Then the commit read each chunk of the base once, and the version is the full upload's
    assert reads == [0, 1, 2, 3, 4]
    expected = {**FILES, "part/04.bin": b"new content 4"}
    assert second.digest == manifest.digest([entry(p, d) for p, d in expected.items()])
    assert all_entries(backend, second.version) == [entry(p, expected[p]) for p in sorted(expected)]


def test_a_manifest_spooled_to_disk_at_commit_is_stored_whole(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a commit whose serialised chunks go to a temporary file past a few bytes
    monkeypatch.setattr(manifests, "_SPOOLED", 16)
    # When a version of nine files is logged, then one from it
    first = backend.log(P, N, FILES).record
    started = backend.registry.start_upload(P, N, StartUpload(base=based(first), remove=["part/03.bin"]))
    assert isinstance(started, UploadStarted)
    second = backend.registry.commit(P, N, started.upload_id).record
    # Then each version's pages list its files in path order, its digest a full upload's
    assert all_entries(backend, first.version) == [entry(p, FILES[p]) for p in sorted(FILES)]
    rest = {p: d for p, d in FILES.items() if p != "part/03.bin"}
    assert all_entries(backend, second.version) == [entry(p, rest[p]) for p in sorted(rest)]
    assert second.digest == manifest.digest([entry(p, d) for p, d in rest.items()])


def test_if_changed_from_a_base_answers_latest_when_the_files_are_its(backend: Backend) -> None:
    # Given a version, then a second one that changes one file of it
    first = backend.log(P, N, FILES).record
    files = {**FILES, "part/04.bin": b"new content 4"}
    second = backend.log(P, N, files).record
    # When an upload from the first makes that same change, with if_changed, committed at once
    from_older = StartUpload(
        files=[entry("part/04.bin", files["part/04.bin"])], base=based(first), commit=True, if_changed=True
    )
    # And an upload from the second re-sends one of its entries as it is
    same = StartUpload(
        files=[entry("part/05.bin", files["part/05.bin"])], base=based(second), commit=True, if_changed=True
    )
    answers = [backend.registry.start_upload(P, N, request) for request in (from_older, same)]
    # Then both answer the second version, and none was made
    assert [(a.created, a.record.version) for a in answers if isinstance(a, Committed)] == [(False, "2.0.0")] * 2
    assert head_state(backend)[2] == 2


@pytest.mark.parametrize(
    ("request_of", "error", "code"),
    [
        (lambda v: {"base": BaseRef(version="7.0.0", digest=v.digest)}, NotFound, "not_found"),
        (lambda v: {"base": BaseRef(version=v.version, digest="0" * 64)}, Conflict, "base_mismatch"),
        (lambda v: {"base": based(v), "remove": ["part/nope.bin"]}, Invalid, "invalid_request"),
        (lambda v: {"base": based(v), "remove": ["part/01.bin"], "files": [entry("part/01.bin", b"x")]}, Invalid, None),
    ],
    ids=["unknown-version", "digest-mismatch", "remove-not-in-base", "remove-and-add"],
)
def test_a_bad_base_is_refused_and_writes_nothing(
    backend: Backend, request_of: Any, error: type[Exception], code: str | None
) -> None:
    # Given a version
    first = backend.log(P, N, FILES).record
    before = (head_state(backend), sorted(backend.blob_keys()))
    # When an upload names a bad base or bad changes to it
    with pytest.raises(error) as raised:
        backend.registry.start_upload(P, N, StartUpload(**request_of(first)))
    # Then it is refused, and nothing was written
    if code is not None:
        assert getattr(raised.value, "code", code) == code
    assert (head_state(backend), sorted(backend.blob_keys())) == before


def test_a_base_of_another_artifact_is_refused(backend: Backend) -> None:
    # Given two artifacts with a version 1.0.0 each
    backend.log(P, N, FILES)
    other = backend.log(P, "other", {"x": b"x"}).record
    # When an upload of the first names the other's version and digest as its base
    with pytest.raises(Conflict) as raised:
        backend.registry.start_upload(P, N, StartUpload(base=based(other)))
    # Then the digest does not match this artifact's 1.0.0: refused
    assert raised.value.code == "base_mismatch"
    assert head_state(backend)[2] == 1


def test_a_later_batch_adding_a_removed_path_is_refused(backend: Backend) -> None:
    first = backend.log(P, N, FILES).record
    started = backend.registry.start_upload(P, N, StartUpload(base=based(first), remove=["part/03.bin"]))
    assert isinstance(started, UploadStarted)
    with pytest.raises(Invalid, match="both removed and added"):
        backend.registry.add_files(P, N, started.upload_id, AddFiles(files=[entry("part/03.bin", b"3")]))


def test_a_base_deleted_before_the_commit_is_refused(backend: Backend) -> None:
    # Given an upload from version 2.0.0
    backend.log(P, N, {"a": b"a"})
    base = backend.log(P, N, FILES).record
    started = backend.registry.start_upload(P, N, StartUpload(base=based(base), files=[entry("new", b"new")]))
    assert isinstance(started, UploadStarted)
    backend.put_blob(started.missing[0], b"new")
    # When the base is deleted before the commit
    backend.registry.delete_version(P, N, "2.0.0")
    before = head_state(backend)
    # Then the commit is refused (its blobs may be reclaimed now), and nothing is written
    with pytest.raises(Conflict) as raised:
        backend.registry.commit(P, N, started.upload_id)
    assert raised.value.code == "upload_state"
    assert head_state(backend) == before


def test_the_http_route_takes_a_base_and_answers_its_errors(backend: Backend) -> None:
    # Given a version
    first = backend.log(P, N, FILES).record
    route = f"/v1/projects/{P}/artifacts/{N}/uploads"
    base = {"version": first.version, "digest": first.digest}
    # When uploads from it are posted over HTTP
    ok = call(backend, "POST", route, {"base": base, "remove": ["part/02.bin"], "commit": True})
    unknown = call(backend, "POST", route, {"base": {**base, "version": "9.9.9"}})
    mismatch = call(backend, "POST", route, {"base": {**base, "digest": "f" * 64}})
    orphan = call(backend, "POST", route, {"remove": ["part/02.bin"]})
    # Then the good one commits a version without that file, and the others get their 4xx
    assert (ok[0], ok[1]["version"], ok[1]["file_count"]) == (201, "2.0.0", 8)
    assert (unknown[0], unknown[1]["error"]["code"]) == (404, "not_found")
    assert (mismatch[0], mismatch[1]["error"]["code"]) == (409, "base_mismatch")
    assert (orphan[0], orphan[1]["error"]["code"]) == (400, "invalid_request")


# ---------------------------------------------------------------- a commit reads its batches one at a time


def upload_in_batches(backend: Backend, batches: list[list[str]]) -> str:
    """An upload whose requests list these paths (content: the path), every blob stored."""
    data = {p: p.encode() for batch in batches for p in batch}
    started = backend.registry.start_upload(P, N, StartUpload(files=[entry(p, data[p]) for p in batches[0]]))
    assert isinstance(started, UploadStarted)
    missing = list(started.missing)
    for batch in batches[1:]:
        added = backend.registry.add_files(P, N, started.upload_id, AddFiles(files=[entry(p, data[p]) for p in batch]))
        missing += added.missing
    by_sha = {hashlib.sha256(d).hexdigest(): d for d in data.values()}
    for target in missing:
        backend.put_blob(target, by_sha[target.sha256])
    return started.upload_id


@pytest.mark.parametrize(
    "batches",
    [
        [["a/1", "a/2"], ["c/1", "c/2"], ["b/1", "b/2"]],  # ranges apart, sent out of order
        [["a/1", "c/1"], ["b/1", "d/1"], ["a/2"]],  # ranges that overlap
    ],
    ids=["apart", "overlapping"],
)
def test_batches_in_any_order_make_the_manifest_in_path_order(backend: Backend, batches: list[list[str]]) -> None:
    # Given an upload whose batches were not sent in path order
    upload_id = upload_in_batches(backend, batches)
    # When it is committed
    version = backend.registry.commit(P, N, upload_id).record
    # Then the version lists every path once, in path order, with the digest of its files
    paths = sorted(p for batch in batches for p in batch)
    assert [e.path for e in all_entries(backend, "1.0.0")] == paths
    assert version.digest == manifest.digest([entry(p, p.encode()) for p in paths])


def test_a_path_in_two_batches_is_refused_at_commit(backend: Backend) -> None:
    # Given an upload that listed one path in two of its batches
    upload_id = upload_in_batches(backend, [["a/1", "b/1"], ["b/1"]])
    # When it is committed, Then it is refused, and no version is made
    with pytest.raises(Conflict) as raised:
        backend.registry.commit(P, N, upload_id)
    assert raised.value.code == "upload_state"
    assert head_state(backend) is None
