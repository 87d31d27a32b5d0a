"""What the registry promises, on both back ends (DynamoDB + S3 on moto, and SQLite + a folder)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.model import deferred
from artreg.model.errors import Conflict, Invalid, NotFound, PreconditionFailed
from artreg.model.wire import (
    AddFiles,
    FileEntry,
    MissingBlob,
    MoveAlias,
    PatchVersion,
    RemoteSpec,
    StartUpload,
    UploadStarted,
    Usage,
    VersionRecord,
)
from artreg.registry.service import Committed
from tests.conftest import FAST, Backend, aws_backend, local_backend

P, N = "vision", "resnet"


def entry(path: str, data: bytes) -> FileEntry:
    return FileEntry(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def start(backend: Backend, files: dict[str, bytes], name: str = N, **request: Any) -> UploadStarted | Committed:
    batch = StartUpload(files=[entry(p, d) for p, d in files.items()], **request)
    return backend.registry.start_upload(P, name, batch, caller="tester")


def log(backend: Backend, files: dict[str, bytes], name: str = N, **request: Any) -> VersionRecord:
    return backend.log(P, name, files, **request).record


def head_state(backend: Backend, name: str = N) -> Any:
    head = backend.registry.store.get_head(P, name)
    return head and (head.revision, head.latest, head.aliases, head.version_count)


# ---------------------------------------------------------------- version numbers


@pytest.mark.parametrize(("bump", "expected"), [("major", "3.0.0"), ("minor", "2.6.0"), ("patch", "2.5.15")])
def test_a_bump_counts_from_the_highest_release(backend: Backend, bump: str, expected: str) -> None:
    # Given an artifact whose highest release is 2.5.14, and a later pre-release
    assert log(backend, {"a": b"1"}).version == "1.0.0"
    log(backend, {"a": b"2"}, version="2.5.14")
    log(backend, {"a": b"3"}, version="2.6.0-rc.1")
    # When a version is logged with a bump
    version = log(backend, {"a": b"4"}, bump=bump)
    # Then it counts from 2.5.14, whatever pre-release exists
    assert version.version == expected


def test_an_explicit_version_that_exists_is_a_conflict_and_changes_nothing(backend: Backend) -> None:
    # Given 1.0.0 and 1.0.1+build.7
    log(backend, {"a": b"1"})
    log(backend, {"a": b"2"}, version="1.0.1+build.7")
    before = head_state(backend)
    # When 1.0.0 is logged again, or 1.0.1 with other build metadata
    for version in ("1.0.0", "1.0.1+build.8"):
        with pytest.raises(Conflict) as error:
            log(backend, {"a": b"3"}, version=version)
        # Then it is 409 version_exists and nothing moved
        assert error.value.code == "version_exists"
    assert head_state(backend) == before


@pytest.mark.slow
def test_concurrent_bumps_never_repeat_or_skip(aws_load: dict[str, Any]) -> None:
    # Given 16 writers on one artifact, a third of them bumping the major, a third the minor and the
    # rest the patch, and DynamoDB cancelling some transactions as conflicting. moto answers one
    # request at a time, tens of ms each, so a round of 16 attempts takes most of a second here where
    # DynamoDB takes ~10 ms a transaction: the production deadline of 20 s would be a few dozen rounds,
    # not the ~2,000 it is on AWS. The claim tested is no failure, no repeat, no gap, whatever the mix
    # of bumps (the arithmetic of each bump has its own unit test: tests/unit/test_model.py::test_bumps).
    backend = aws_backend(aws_load, conflict_rate=0.1, policy=replace(FAST, commit_deadline_s=300))
    # (each writer is a Lambda process of its own on AWS, which builds its models alone: here they share
    # one process, so its models are built before the threads start, as `artreg server` does)
    deferred.build_all()
    writers, per_writer = 16, 13
    bumps = ("major", "minor", "patch")
    results: list[tuple[str, str]] = []  # (version, the bump that made it)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        bump = bumps[number % 3]
        try:
            for i in range(per_writer):
                results.append((log(backend, {"w.txt": f"{number}-{i}".encode()}, bump=bump).version, bump))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    # When they all commit at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every commit succeeded, each version is its bump of the one before it (none repeated, none
    # skipped), and latest is the last of the 208
    assert not errors
    assert len(results) == writers * per_writer >= 200
    ordered = sorted(results, key=lambda result: tuple(map(int, result[0].split("."))))
    assert ordered[0][0] == "1.0.0"
    for (before, _), (version, bump) in itertools.pairwise(ordered):
        major, minor, patch = map(int, before.split("."))
        expected = {
            "major": f"{major + 1}.0.0",
            "minor": f"{major}.{minor + 1}.0",
            "patch": f"{major}.{minor}.{patch + 1}",
        }
        assert version == expected[bump], (before, bump, version)
    assert {bump for _, bump in ordered[1:]} == set(bumps)
    assert backend.registry.resolve(P, N, "latest").version == ordered[-1][0]


def test_concurrent_bumps_on_the_local_store_never_repeat_or_skip(tmp_path: Path) -> None:
    # Given 8 threads on one SQLite file
    backend = local_backend(tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            for i in range(25):
                results.append(log(backend, {"w.txt": f"{number}-{i}".encode()}).version)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    # When they commit at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then 200 versions, 1.0.0 to 200.0.0, none twice
    assert not errors
    assert sorted(int(v.split(".")[0]) for v in results) == list(range(1, 201))


# ---------------------------------------------------------------- uploads and blobs


def test_a_commit_without_its_blob_is_refused_and_leaves_nothing(backend: Backend) -> None:
    # Given a committed version and an upload whose blob was never uploaded
    log(backend, {"a": b"first"}, aliases=["staging"])
    before = head_state(backend)
    started = start(backend, {"model.pt": b"weights"}, aliases=["staging"])
    assert isinstance(started, UploadStarted)
    # When it is committed
    with pytest.raises(Conflict) as error:
        backend.registry.commit(P, N, started.upload_id)
    # Then 409 blobs_missing names the blob, and no version, alias or head changed
    assert error.value.code == "blobs_missing"
    assert error.value.details["missing"] == [{"sha256": hashlib.sha256(b"weights").hexdigest(), "size": 7}]
    assert head_state(backend) == before
    assert backend.registry.resolve(P, N, "staging").version == "1.0.0"


def test_a_blob_uploaded_with_other_bytes_is_refused(backend: Backend) -> None:
    # Given an upload whose blob was stored with other bytes (of another length)
    started = start(backend, {"model.pt": b"weights"})
    assert isinstance(started, UploadStarted)
    target = started.missing[0]
    with contextlib.suppress(Exception):  # a store that refuses the bytes outright does as well
        backend.put_blob(target, b"tampered weights")
    # When it is committed
    with pytest.raises(Conflict) as error:
        backend.registry.commit(P, N, started.upload_id)
    # Then it is blobs_missing, and the artifact does not exist
    assert error.value.code == "blobs_missing"
    assert head_state(backend) is None


def test_retrying_a_commit_answers_the_same_version(backend: Backend) -> None:
    # Given a committed upload
    started = start(backend, {"a": b"x"})
    assert isinstance(started, UploadStarted)
    backend.put_blob(started.missing[0], b"x")
    first = backend.registry.commit(P, N, started.upload_id)
    # When the client retries the commit
    again = backend.registry.commit(P, N, started.upload_id)
    # Then it is the same version, not a new one
    assert (first.created, again.created) == (True, False)
    assert again.record.version == first.record.version == "1.0.0"
    assert backend.registry.get_artifact(P, N).version_count == 1


def test_an_abandoned_upload_leaves_no_gap(backend: Backend) -> None:
    # Given a version, and an upload that is never committed
    log(backend, {"a": b"1"})
    start(backend, {"a": b"never"})
    # When the next version is logged
    # Then it is the next number
    assert log(backend, {"a": b"2"}).version == "2.0.0"


def test_the_same_content_is_stored_once(backend: Backend) -> None:
    # Given a version holding some bytes
    log(backend, {"model.pt": b"weights" * 100})
    # When another artifact logs the same bytes under another path
    started = start(backend, {"copy/model.pt": b"weights" * 100}, name="other")
    # Then nothing is missing, and one blob is stored
    assert isinstance(started, UploadStarted)
    assert started.missing == []
    assert len([k for k in backend.blob_keys() if hashlib.sha256(b"weights" * 100).hexdigest() in k]) == 1


def test_if_changed_answers_the_existing_version(backend: Backend) -> None:
    # Given a version with two files
    first = log(backend, {"a": b"1", "b": b"2"})
    # When the same files are logged again, listed in another order, with if_changed
    started = backend.registry.start_upload(
        P, N, StartUpload(files=[entry("b", b"2"), entry("a", b"1")], commit=True, if_changed=True)
    )
    # Then the answer is that version, and no new one was made
    assert isinstance(started, Committed)
    assert (started.created, started.record.version, started.record.digest) == (False, "1.0.0", first.digest)
    # And without if_changed a new version is made
    assert log(backend, {"a": b"1", "b": b"2"}).version == "2.0.0"


def test_a_retried_batch_of_files_is_added_once(backend: Backend) -> None:
    # Given an upload whose second batch is sent twice (a client retrying after a lost answer)
    started = start(backend, {"a": b"1"})
    assert isinstance(started, UploadStarted)
    for _ in range(2):
        added = backend.registry.add_files(P, N, started.upload_id, AddFiles(files=[entry("b", b"2")]))
    for target, data in ((started.missing[0], b"1"), (added.missing[0], b"2")):
        backend.put_blob(target, data)
    # When it is committed
    version = backend.registry.commit(P, N, started.upload_id).record
    # Then each path is there once
    assert [f.path for f in version.files] == ["a", "b"]


def test_a_path_listed_twice_is_refused(backend: Backend) -> None:
    with pytest.raises(Invalid, match="listed twice"):
        start(backend, {"a": b"1"}, remote=[RemoteSpec(uri="https://example.com/a", path="a")])
    assert head_state(backend) is None


def test_remote_references_are_kept_as_given(backend: Backend) -> None:
    # Given references that the registry cannot read
    version = log(
        backend,
        {"a": b"1"},
        remote=[
            RemoteSpec(uri="s3://not-a-bucket-of-ours/x.csv", path="raw/x.csv"),
            RemoteSpec(uri="https://example.com/data.csv", path="raw/data.csv", metadata={"rows": 3}),
        ],
    )
    # Then they are stored as given, unverified, and the log did not fail
    assert [(r.uri, r.verified) for r in version.remote] == [
        ("https://example.com/data.csv", False),
        ("s3://not-a-bucket-of-ours/x.csv", False),
    ]
    _, target = backend.registry.file_target(P, N, "latest", "raw/data.csv")
    assert target == "https://example.com/data.csv"


def test_readable_s3_references_are_pinned(aws: dict[str, Any]) -> None:
    # Given an object in another bucket that the registry can read, with versioning on
    backend = aws_backend(aws)
    aws["s3"].create_bucket(Bucket="datasets")
    aws["s3"].put_bucket_versioning(Bucket="datasets", VersioningConfiguration={"Status": "Enabled"})
    put = aws["s3"].put_object(Bucket="datasets", Key="iris/train.csv", Body=b"a,b\n1,2\n")
    # When a version references it
    version = log(backend, {}, remote=[RemoteSpec(uri="s3://datasets/iris/train.csv", path="raw/train.csv")])
    # Then its size, ETag and version id are pinned
    [remote] = version.remote
    assert (remote.verified, remote.size, remote.version_id) == (True, 8, put["VersionId"])
    assert remote.etag == put["ETag"].strip('"')


def test_a_large_blob_goes_multipart(backend: Backend) -> None:
    # Given a 12 MiB file, over the 8 MiB threshold of these tests
    data = bytes(range(256)) * (12 * 4096)
    started = start(backend, {"big.bin": data})
    assert isinstance(started, UploadStarted)
    target = started.missing[0]
    assert target.multipart
    assert len(target.multipart.parts) == 3
    # When its parts are uploaded and completed
    backend.put_blob(target, data)
    from artreg.model.wire import CompleteBlob

    backend.registry.complete_blob(
        P, N, started.upload_id, target.sha256, CompleteBlob(parts=backend.part_etags(target, data))
    )
    version = backend.registry.commit(P, N, started.upload_id).record
    # Then the version holds it, and its bytes come back whole
    [download] = backend.registry.download(P, N, version.version).files
    assert hashlib.sha256(backend.fetch(download.url)).hexdigest() == target.sha256


# ---------------------------------------------------------------- aliases


def test_alias_moves_are_compare_and_swap(backend: Backend) -> None:
    # Given two versions and stable on 1.0.0
    log(backend, {"a": b"1"}, aliases=["stable"])
    log(backend, {"a": b"2"})
    registry = backend.registry
    # When stable is moved expecting the wrong version, or expecting it not to exist
    for expected in ("2.0.0", None):
        with pytest.raises(PreconditionFailed):
            registry.move_alias(P, N, "stable", MoveAlias(version="2.0.0", expected_version=expected))
    # Then it has not moved
    assert registry.resolve(P, N, "stable").version == "1.0.0"
    # And with the right expectation it moves, and both versions know their aliases
    moved = registry.move_alias(P, N, "stable", MoveAlias(version="2.0.0", expected_version="1.0.0"))
    assert moved.aliases == ["latest", "stable"]
    assert registry.resolve(P, N, "1.0.0").aliases == []
    assert registry.resolve(P, N, "stable").version == "2.0.0"
    # And a new alias may require that it does not exist yet
    registry.move_alias(P, N, "canary", MoveAlias(version="1.0.0", expected_version=None))
    assert registry.get_artifact(P, N).aliases == {"canary": "1.0.0", "stable": "2.0.0"}


def test_latest_cannot_be_moved_or_removed(backend: Backend) -> None:
    log(backend, {"a": b"1"})
    for action in (
        lambda: backend.registry.move_alias(P, N, "latest", MoveAlias(version="1.0.0")),
        lambda: backend.registry.remove_alias(P, N, "latest"),
    ):
        with pytest.raises(Conflict) as error:
            action()
        assert error.value.code == "alias_conflict"


def test_concurrent_alias_moves_with_the_same_expectation_let_one_win(aws: dict[str, Any]) -> None:
    # Given stable on 1.0.0 and eight candidates
    backend = aws_backend(aws)
    log(backend, {"a": b"0"}, aliases=["stable"])
    for i in range(8):
        log(backend, {"a": str(i).encode()})
    outcomes: list[str] = []

    def promote(version: str) -> None:
        try:
            backend.registry.move_alias(P, N, "stable", MoveAlias(version=version, expected_version="1.0.0"))
            outcomes.append(version)
        except PreconditionFailed:
            outcomes.append("lost")

    # When eight deploy jobs promote at once, each expecting 1.0.0
    threads = [threading.Thread(target=promote, args=(f"{i}.0.0",)) for i in range(2, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one moved it
    winners = [o for o in outcomes if o != "lost"]
    assert len(winners) == 1
    assert backend.registry.resolve(P, N, "stable").version == winners[0]


def test_latest_is_the_highest_live_version(backend: Backend) -> None:
    registry = backend.registry
    # Given 1.0.0, 2.0.0 and a backfilled 1.5.0
    log(backend, {"a": b"1"})
    log(backend, {"a": b"2"}, aliases=["stable"])
    log(backend, {"a": b"3"}, version="1.5.0")
    # Then latest stays 2.0.0
    assert registry.resolve(P, N, "latest").version == "2.0.0"
    # When 2.0.0 is deleted (it holds stable, so only with force)
    with pytest.raises(Conflict):
        registry.delete_version(P, N, "2.0.0")
    registry.delete_version(P, N, "2.0.0", force=True)
    # Then latest moves down to 1.5.0, stable is gone, and 2.0.0 is no longer found
    assert registry.resolve(P, N, "latest").version == "1.5.0"
    assert registry.resolve(P, N, "latest").aliases == ["latest"]
    assert registry.get_artifact(P, N).aliases == {}
    with pytest.raises(NotFound):
        registry.resolve(P, N, "2.0.0")
    assert [v.version for v in registry.list_versions(P, N).items] == ["1.5.0", "1.0.0"]
    # And a bump never hands out 2.0.0 again
    assert log(backend, {"a": b"4"}).version == "3.0.0"


def test_an_alias_resolves_as_it_stood_at_a_time(backend: Backend) -> None:
    registry = backend.registry
    log(backend, {"a": b"1"}, aliases=["stable"])
    log(backend, {"a": b"2"})
    between = datetime.now(UTC)
    registry.move_alias(P, N, "stable", MoveAlias(version="2.0.0"))
    # Then ?at= gives the alias as it stood, now gives where it is
    assert registry.resolve(P, N, "stable", at=between).version == "1.0.0"
    assert registry.resolve(P, N, "stable").version == "2.0.0"
    with pytest.raises(NotFound):
        registry.resolve(P, N, "stable", at=between - timedelta(days=1))
    # And the history lists every move, newest first
    history = registry.alias_history(P, N, "stable").items
    assert [(m.version, m.previous_version) for m in history] == [("2.0.0", "1.0.0"), ("1.0.0", None)]


# ---------------------------------------------------------------- reading and changing


def test_versions_filter_by_tag_alias_and_metadata(backend: Backend) -> None:
    registry = backend.registry
    log(backend, {"a": b"1"}, tags=["customer:1"], metadata={"acc": 0.9, "framework": "torch"})
    log(backend, {"a": b"2"}, metadata={"acc": 0.95, "framework": "jax"}, aliases=["stable"])
    log(backend, {"a": b"3"}, tags=["customer:1"], metadata={"framework": "torch"})

    def versions(**filters: Any) -> list[str]:
        return [v.version for v in registry.list_versions(P, N, **filters).items]

    assert versions() == ["3.0.0", "2.0.0", "1.0.0"]
    assert versions(tag="customer:1") == ["3.0.0", "1.0.0"]
    assert versions(alias="stable") == ["2.0.0"]
    assert versions(metadata={"framework": "torch"}) == ["3.0.0", "1.0.0"]
    assert versions(metadata={"acc": "0.95"}) == ["2.0.0"]
    # And pages follow on from their cursor
    first = registry.list_versions(P, N, limit=2)
    rest = registry.list_versions(P, N, limit=2, cursor=first.next_cursor)
    assert [v.version for v in first.items + rest.items] == ["3.0.0", "2.0.0", "1.0.0"]
    assert rest.next_cursor is None


def test_patch_merges_metadata_and_tags_everywhere_the_version_is_read(backend: Backend) -> None:
    registry = backend.registry
    log(backend, {"a": b"1"}, metadata={"keep": 1, "drop": 2}, tags=["old"], aliases=["stable"])
    registry.patch_version(
        P, N, "stable", PatchVersion(metadata={"drop": None, "new": "x"}, tags_add=["new"], tags_remove=["old"])
    )
    for ref in ("1.0.0", "stable", "latest"):
        version = registry.resolve(P, N, ref)
        assert (version.metadata, version.tags) == ({"keep": 1, "new": "x"}, ["new"])


def test_usages_are_recorded(backend: Backend) -> None:
    log(backend, {"a": b"1"}, aliases=["stable"])
    usage = backend.registry.record_usage(P, N, "stable", Usage(run_id="run-43", step="eval"))
    assert (usage.version, usage.run_id) == ("1.0.0", "run-43")


@pytest.mark.slow
def test_a_version_of_5000_files_pages_through_files_and_download(backend: Backend) -> None:
    registry = backend.registry
    # 101 contents, in turn: what the pages are checked for is paths and the file of each; every blob of
    # a batch is one HEAD on S3 (and another at the commit), so 5,000 distinct ones would be 10,000 calls
    # to moto, the most of this test. Paths a chunk (1,000), a page (700) or one apart hold other bytes.
    files = {f"shard/{i:05d}.bin": f"content {i % 101}".encode() for i in range(5000)}
    entries = [entry(p, d) for p, d in files.items()]
    by_sha = {hashlib.sha256(d).hexdigest(): d for d in files.values()}

    def store(missing: list[MissingBlob]) -> None:
        for target in missing:  # the uploads are the set-up here, not the subject
            backend.store(P, target, by_sha[target.sha256])

    # Given an upload of 5,000 files in batches of 1,000
    started = registry.start_upload(
        P, N, StartUpload(files=entries[:1000], remote=[RemoteSpec(uri="https://x/y", path="zz/remote")])
    )
    assert isinstance(started, UploadStarted)
    store(started.missing)
    for i in range(1000, 5000, 1000):
        store(registry.add_files(P, N, started.upload_id, AddFiles(files=entries[i : i + 1000])).missing)
    # When it is committed
    version = registry.commit(P, N, started.upload_id).record
    # Then the record is truncated, and the pages give every entry once, in path order
    assert (version.file_count, version.files_truncated, len(version.files)) == (5000, True, 1000)
    paths: list[str] = []
    cursor = None
    while True:
        page = registry.list_files(P, N, "1.0.0", limit=700, cursor=cursor)
        paths += [e.path for e in page.items]
        if not (cursor := page.next_cursor):
            break
    assert paths == sorted([*files, "zz/remote"])
    downloaded: list[str] = []
    cursor = None
    while True:
        dl = registry.download(P, N, "latest", cursor=cursor)
        downloaded += [f.path for f in dl.files]
        if not (cursor := dl.next_cursor):
            break
    assert downloaded == sorted(files)
    assert backend.fetch(registry.file_target(P, N, "latest", "shard/04321.bin")[1]) == b"content 79"  # type: ignore[arg-type]


def test_a_short_page_reads_no_more_versions_than_it_shows(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an artifact of 30 versions, and the store's listings watched
    for i in range(30):
        log(backend, {}, metadata={"i": i})
    asked: list[int] = []
    listing = backend.registry.store.list_versions
    monkeypatch.setattr(backend.registry.store, "list_versions", lambda *a: asked.append(a[-1]) or listing(*a))
    # When a page of 10 is listed
    page = backend.registry.list_versions(P, N, limit=10)
    # Then the store was asked for those 10 only (a DynamoDB Query reads what it is asked for: the cost)
    assert [v.version for v in page.items] == [f"{i}.0.0" for i in range(30, 20, -1)]
    assert asked == [10]
    # And the next page goes on from there
    following = backend.registry.list_versions(P, N, limit=10, cursor=page.next_cursor)
    assert [v.version for v in following.items] == [f"{i}.0.0" for i in range(20, 10, -1)]
