"""What only the folder blob store does: HMAC-signed expiring URLs, checked uploads that never leave a
half-written blob, multipart completion from staged parts, and paths made of checked names only."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import multiprocessing
import os
import re
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from artreg.local.blobs import FolderBlobStore
from artreg.model.errors import ArtregError, Forbidden, Invalid, NotFound
from artreg.model.manifest import ENTRIES
from artreg.model.wire import FileEntry, MissingBlob, Part, RemoteSpec
from artreg.registry.records import UnsettledBlob
from tests.support.folder_blobs import fetch, parts_of, put_blob

P = "vision"
MiB = 1024**2
DATA = b"model weights" * 1000
SHA = hashlib.sha256(DATA).hexdigest()


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FolderBlobStore:
    return FolderBlobStore(
        tmp_path / "data", base_url="http://127.0.0.1:0", multipart_threshold=MiB, part_size=MiB, clock=clock
    )


def target_of(store: FolderBlobStore, data: bytes = DATA) -> MissingBlob:
    [target] = store.upload_targets(P, [(hashlib.sha256(data).hexdigest(), len(data))])
    return target


def put(store: FolderBlobStore, url: str, body: bytes, method: str = "PUT") -> str:
    split = urlsplit(url)
    return store.receive(store.verify_url(method, split.path, split.query), io.BytesIO(body), len(body))


def with_query(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()} | changes
    return split._replace(query=urlencode(query)).geturl()


def leftovers(store: FolderBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file() and p.name != ".secret"]


# ---------------------------------------------------------------- signed URLs


def test_a_signed_put_stores_the_blob_at_its_content_address(store: FolderBlobStore) -> None:
    # Given the upload target of a blob the store lacks
    assert store.find_missing(P, [(SHA, len(DATA))]) == [(SHA, len(DATA))]
    target = target_of(store)
    assert target.url is not None
    assert target.headers == {}
    # When its bytes are PUT to the URL
    etag = put(store, target.url, DATA)
    # Then it is stored at <project>/blobs/sha256/<2 hex>/<hex>, found and verified, and comes back whole
    assert re.fullmatch(r'"[^"]+"', etag)  # quoted and opaque, as S3's may be
    assert (store.root / P / "blobs" / "sha256" / SHA[:2] / SHA).read_bytes() == DATA
    assert store.find_missing(P, [(SHA, len(DATA))]) == []
    assert store.verify(P, [(SHA, len(DATA))]) == []
    assert fetch(store, store.download_url(P, SHA, "weights/model.pt")) == DATA
    # And the folder's signing key is readable by its owner only
    assert stat.S_IMODE((store.root / ".secret").stat().st_mode) == 0o600


def test_the_signing_key_is_made_once_per_folder(store: FolderBlobStore, clock: FakeClock) -> None:
    # Given a URL signed by one store
    target = target_of(store)
    assert target.url is not None
    # When another store opens the same folder (a restart)
    again = FolderBlobStore(store.root, base_url="http://127.0.0.1:0", clock=clock)
    # Then it accepts the URL
    put(again, target.url, DATA)
    assert again.find_missing(P, [(SHA, len(DATA))]) == []


@pytest.mark.parametrize(
    "tamper",
    [
        {"size": str(len(DATA) + 1)},
        {"expires": "9999999999"},
        {"sig": "0" * 64},
        {"filename": "other.bin"},
    ],
)
def test_a_tampered_url_is_refused(store: FolderBlobStore, tamper: dict[str, str]) -> None:
    # Given a PUT URL with one of its parameters changed
    target = target_of(store)
    assert target.url is not None
    url = with_query(target.url, **tamper)
    # When it is used
    with pytest.raises(Forbidden) as error:
        put(store, url, DATA)
    # Then it is refused, and nothing is stored
    assert error.value.code == "signature_mismatch"
    assert leftovers(store) == []


@pytest.mark.parametrize("filename", [None, "model.pt", 'a "quoted" name/ü\\x.bin', "\u2603 snow & more?=#"])
@pytest.mark.parametrize("size", [None, 0, 5 * MiB])
def test_urls_are_signed_and_written_as_before_so_they_outlive_a_restart(
    store: FolderBlobStore, filename: str | None, size: int | None
) -> None:
    # Given a blob path, a size and a file name (any text a user may give)
    path = f"/blobs/{P}/{SHA}"
    # When the store signs a URL for them
    url = store._url("GET", path, size, filename)
    # Then its query and signature are those of the JSON list and urlencode, as every earlier release made
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    text = json.dumps(["GET", path, expires, size, filename])
    query: dict[str, str | int] = {"expires": expires}
    query |= {"size": size} if size is not None else {}
    query |= {"filename": filename} if filename is not None else {}
    query["sig"] = hmac.digest(store._key, text.encode(), "sha256").hex()
    assert url == f"http://127.0.0.1:0{path}?{urlencode(query)}"
    # And it is accepted
    assert store.verify_url("GET", path, urlsplit(url).query).filename == filename


def test_a_url_for_another_blob_or_without_signature_is_refused(store: FolderBlobStore) -> None:
    # Given a PUT URL whose path is changed to another digest, and one without its query
    target = target_of(store)
    assert target.url is not None
    other = target.url.replace(SHA, hashlib.sha256(b"evil").hexdigest())
    unsigned = target.url.split("?")[0]
    # When either is used
    # Then it is refused
    for url in (other, unsigned):
        with pytest.raises(Forbidden):
            put(store, url, DATA)


def test_an_expired_url_is_refused(store: FolderBlobStore, clock: FakeClock) -> None:
    # Given a URL signed 15 minutes and one second ago
    target = target_of(store)
    assert target.url is not None
    clock.at += timedelta(seconds=store.presign_seconds + 1)
    # When it is used
    with pytest.raises(Forbidden) as error:
        put(store, target.url, DATA)
    # Then it has expired
    assert error.value.code == "url_expired"
    assert store.find_missing(P, [(SHA, len(DATA))]) == [(SHA, len(DATA))]


def test_a_url_only_allows_the_method_it_was_signed_for(store: FolderBlobStore) -> None:
    # Given a stored blob, its download URL and an upload URL
    target = target_of(store)
    assert target.url is not None
    put(store, target.url, DATA)
    download = store.download_url(P, SHA, "model.pt")
    # When the download URL is used for a PUT, or the upload URL for a GET
    # Then both are refused
    with pytest.raises(Forbidden):
        put(store, download, b"overwrite")
    split = urlsplit(target.url)
    with pytest.raises(Forbidden):
        store.verify_url("GET", split.path, split.query)
    # And the download URL names the file for Content-Disposition
    split = urlsplit(download)
    assert store.verify_url("GET", split.path, split.query).filename == "model.pt"


@pytest.mark.parametrize(
    "path",
    [
        f"/blobs/../{SHA}",
        f"/blobs/..%2F..%2Fetc/{SHA}",
        f"/blobs/.secret/{SHA}",
        "/blobs/vision/../../.secret",
        "/blobs/vision/" + "A" * 64,
        f"/blobs/vision/{SHA}/parts/../1",
        f"/blobs/vision/{SHA}/parts/{'0' * 32}/../../x",
        f"/blobs/vision/{SHA}/extra",
        "/etc/passwd",
    ],
)
def test_a_path_outside_the_blob_routes_is_refused(store: FolderBlobStore, path: str) -> None:
    # Given a request path that is not a project and a digest
    # When the server checks it
    # Then it is refused before any signature or file is looked at
    with pytest.raises((Invalid, NotFound)):
        store.verify_url("PUT", path, "expires=9999999999&size=1&sig=x")


def test_the_store_builds_no_path_from_unchecked_names(store: FolderBlobStore) -> None:
    # Given names that would leave the folder
    # When they reach the store by any method
    # Then they are refused
    for call in (
        lambda: store.accept_put("../etc", SHA, 1, io.BytesIO(b"x"), 1),
        lambda: store.find_missing(P, [("../" + SHA[3:], 1)]),
        lambda: store.open_blob("..", SHA),
        lambda: store.get_manifest_chunk(P, "../x", 0),
        lambda: store.complete_multipart(P, SHA, "../../x", [Part(part_number=1, etag="x")]),
    ):
        with pytest.raises(ArtregError):
            call()
    assert leftovers(store) == []


# ---------------------------------------------------------------- checked uploads


@pytest.mark.parametrize(
    ("body", "length", "code"),
    [
        (b"X" * len(DATA), len(DATA), "bad_digest"),  # other bytes of the same length
        (DATA + b"!", len(DATA) + 1, "bad_length"),  # more bytes than signed for
        (DATA[:-10], len(DATA), "incomplete_body"),  # the connection dropped
    ],
)
def test_accept_put_refuses_other_bytes_and_leaves_no_blob(
    store: FolderBlobStore, body: bytes, length: int, code: str
) -> None:
    # Given a blob signed for its size and SHA-256
    # When other bytes arrive
    with pytest.raises(Invalid) as error:
        store.accept_put(P, SHA, len(DATA), io.BytesIO(body), length)
    # Then they are refused, and neither a blob nor a temporary file is left
    assert error.value.code == code
    assert store.find_missing(P, [(SHA, len(DATA))]) == [(SHA, len(DATA))]
    assert leftovers(store) == []


def _crash_while_installing(store: FolderBlobStore) -> None:
    def killed(*_: object) -> None:
        os._exit(9)  # as kill -9 between the temporary file and its rename

    with mock.patch.object(os, "replace", killed):  # in this child process only
        store.accept_put(P, SHA, len(DATA), io.BytesIO(DATA), len(DATA))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_crash_before_install_leaves_no_blob(store: FolderBlobStore) -> None:
    # Given a process killed after writing a blob's bytes, before moving them into place
    child = multiprocessing.get_context("fork").Process(target=_crash_while_installing, args=(store,))
    child.start()
    child.join(30)
    assert child.exitcode == 9
    # Then there is no blob, only a temporary file that is no blob's address
    assert store.find_missing(P, [(SHA, len(DATA))]) == [(SHA, len(DATA))]
    assert [p.name.endswith(".tmp") for p in leftovers(store)] == [True]
    # And the upload can be made again
    store.accept_put(P, SHA, len(DATA), io.BytesIO(DATA), len(DATA))
    assert store.verify(P, [(SHA, len(DATA))]) == []


def test_verify_with_a_wrong_size_keeps_the_blob(store: FolderBlobStore) -> None:
    # Given a stored blob
    store.accept_put(P, SHA, len(DATA), io.BytesIO(DATA), len(DATA))
    # When an upload claims another size for it
    # Then that claim fails, and the blob other versions use stays
    assert store.verify(P, [(SHA, 3)]) == [UnsettledBlob(SHA, 3)]
    assert store.verify(P, [(SHA, len(DATA))]) == []


@pytest.mark.parametrize("by_folder", [True, False], ids=["names-in-an-open-folder", "full-paths"])
def test_find_missing_and_verify_tell_each_blob_by_size_and_condemnation(
    store: FolderBlobStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, by_folder: bool
) -> None:
    # Given three stored blobs, one of them condemned by the janitor, in folders of their own or shared
    stored = [f"blob {i}".encode() for i in range(3)]
    for data in stored:
        put(store, target_of(store, data).url or "", data)
    kept, condemned, wrong_size = [(hashlib.sha256(d).hexdigest(), len(d)) for d in stored]
    [blob] = [b for b in store.unlisted_blobs(P, set()) if b.sha256 == condemned[0]]
    store.condemn(P, blob, clock.now())
    absent = (hashlib.sha256(b"never sent").hexdigest(), 10)
    asked = [absent, kept, condemned, (wrong_size[0], wrong_size[1] + 1)]
    # When the store is asked which it lacks (where the system has no lookup in an open folder too)
    monkeypatch.setattr("artreg.local.blob_files._BY_FOLDER", by_folder)
    # Then it lacks all but the one stored whole and not condemned, in the order asked
    expected = [absent, condemned, (wrong_size[0], wrong_size[1] + 1)]
    assert store.find_missing(P, asked) == expected
    assert store.verify(P, asked) == [UnsettledBlob(sha, size) for sha, size in expected]


def test_blobs_are_made_durable_in_one_sync_before_a_commit_counts_them(tmp_path: Path) -> None:
    # Given a store on a file system with syncfs (a fake that records each sync), and no fsync at all
    syncs: list[int] = []
    with mock.patch("artreg.local.blob_files.SYNCFS", lambda fd: syncs.append(fd)):
        store = FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0")
    blobs = [f"blob {i}".encode() for i in range(50)]
    with mock.patch("os.fsync", side_effect=AssertionError("a blob was fsync'd on its own")):
        store.verify(P, [])  # what an earlier process installed is synced first
        syncs.clear()
        # When 50 blobs are PUT
        for data in blobs:
            store.accept_put(P, hashlib.sha256(data).hexdigest(), len(data), io.BytesIO(data), len(data))
        # Then none is synced yet; and when a commit verifies them, one sync covers them all
        assert syncs == []
        assert store.verify(P, [(hashlib.sha256(b).hexdigest(), len(b)) for b in blobs]) == []
        assert len(syncs) == 1
        # And a commit with nothing installed since syncs nothing more
        assert store.verify(P, [(hashlib.sha256(blobs[0]).hexdigest(), len(blobs[0]))]) == []
        assert len(syncs) == 1


def test_without_syncfs_each_blob_is_fsynced_as_it_is_installed(tmp_path: Path) -> None:
    # Given a store where the file system has no syncfs
    with mock.patch("artreg.local.blob_files.SYNCFS", None):
        store = FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0")
    # When a blob is PUT
    with mock.patch("os.fsync") as fsync:
        store.accept_put(P, SHA, len(DATA), io.BytesIO(DATA), len(DATA))
    # Then it was fsync'd before it was answered
    assert fsync.call_count == 1
    assert store.verify(P, [(SHA, len(DATA))]) == []


class WriteStarts:
    """Stands in for sync_file_range(2): records each range whose disk writes were started, and how
    much of the file was written when it was asked."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, fd: int, offset: int, count: int) -> None:
        assert os.fstat(fd).st_size >= offset + count, "a write was started before its bytes were written"
        self.ranges.append((offset, count))


def test_a_large_body_goes_to_the_disk_while_it_arrives_not_all_at_the_commit(
    store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that starts the disk writes of a body every 64 KiB written (sync_file_range recorded)
    starts = WriteStarts()
    monkeypatch.setattr("artreg.local.blob_files.SYNC_FILE_RANGE", starts)
    monkeypatch.setattr("artreg.local.blob_files.WRITE_BEHIND", 64 * 1024)
    data = os.urandom(MiB)  # at the threshold: one PUT
    sha = hashlib.sha256(data).hexdigest()
    # When it is PUT in chunks of 100,000 bytes
    store.accept_put(P, sha, len(data), _Trickle(data, 100_000), len(data))
    # Then its writes were started in order as it came, covering it all but its last piece, before the commit's sync
    assert [offset for offset, _ in starts.ranges] == [
        sum(c for _, c in starts.ranges[:i]) for i in range(len(starts.ranges))
    ]
    assert len(data) - 100_000 <= sum(count for _, count in starts.ranges) <= len(data)
    assert (store.root / P / "blobs" / "sha256" / sha[:2] / sha).read_bytes() == data


def test_a_part_goes_to_the_disk_from_its_own_offset(store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a multipart upload, and a store that starts disk writes every 256 KiB (sync_file_range recorded)
    starts = WriteStarts()
    monkeypatch.setattr("artreg.local.blob_files.SYNC_FILE_RANGE", starts)
    monkeypatch.setattr("artreg.local.blob_files.WRITE_BEHIND", 256 * 1024)
    target = target_of(store, BIG)
    assert target.multipart is not None
    # When its second part is PUT, arriving 256 KiB at a time
    second = target.multipart.parts[1]
    split = urlsplit(second.url)
    signed = store.verify_url("PUT", split.path, split.query)
    store.receive(signed, _Trickle(BIG[MiB : 2 * MiB], 256 * 1024), MiB)
    # Then the writes started are those of that part's bytes, from its offset on
    assert starts.ranges == [(MiB + i * 256 * 1024, 256 * 1024) for i in range(4)]


def test_sync_file_range_is_bound_where_linux_has_it(tmp_path: Path) -> None:
    # Given the real binding (Linux only: elsewhere there is none and nothing is started early)
    from artreg.local import blob_files

    if not sys.platform.startswith("linux"):
        assert blob_files.SYNC_FILE_RANGE is None
        return
    assert blob_files.SYNC_FILE_RANGE is not None
    # When it starts the writes of a file's bytes, Then it returns, and the bytes are the file's
    path = tmp_path / "f"
    with path.open("wb") as out:
        out.write(DATA)
        out.flush()
        blob_files.SYNC_FILE_RANGE(out.fileno(), 0, len(DATA))
    assert path.read_bytes() == DATA


class _Trickle(io.RawIOBase):
    """A body that arrives `step` bytes at a time, as a socket gives it."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = memoryview(data)
        self.step = step

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        n = min(self.step, len(self.data)) if size is None or size < 0 else min(self.step, size, len(self.data))
        piece, self.data = bytes(self.data[:n]), self.data[n:]
        return piece


# ---------------------------------------------------------------- multipart


BIG = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: three parts of 1 MiB
BIG_SHA = hashlib.sha256(BIG).hexdigest()


def test_a_multipart_upload_completes_into_the_blob(store: FolderBlobStore) -> None:
    # Given a blob over the threshold, uploaded in parts
    target = target_of(store, BIG)
    assert target.url is None
    assert target.multipart is not None
    assert [len(p.url) > 0 for p in target.multipart.parts] == [True, True, True]
    put_blob(store, target, BIG)
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == [UnsettledBlob(BIG_SHA, len(BIG))]
    # When it is completed with the ETags of its parts
    store.complete_multipart(P, BIG_SHA, target.multipart.upload_id, parts_of(target))
    # Then the blob is whole and verified, and its staging is gone
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == []
    assert leftovers(store) == [store.root / P / "blobs" / "sha256" / BIG_SHA[:2] / BIG_SHA]
    # And completing it again finds no upload, as S3 answers
    with pytest.raises(NotFound):
        store.complete_multipart(P, BIG_SHA, target.multipart.upload_id, parts_of(target))


def test_a_part_is_stored_without_a_pass_of_md5_and_the_whole_is_still_checked(store: FolderBlobStore) -> None:
    # Given a multipart upload, and a store where MD5 cannot be computed (S3 answers a part's MD5)
    target = target_of(store, BIG)
    assert target.multipart is not None
    with mock.patch("hashlib.md5", side_effect=AssertionError("a part's bytes were hashed with MD5")):
        # When its parts are PUT and the upload completed with the ETags answered
        put_blob(store, target, BIG)
        store.complete_multipart(P, BIG_SHA, target.multipart.upload_id, parts_of(target))
    # Then the blob is stored whole, checked by its SHA-256
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == []
    assert fetch(store, store.download_url(P, BIG_SHA, "big.bin")) == BIG


def test_a_multipart_completion_with_wrong_parts_installs_nothing(store: FolderBlobStore) -> None:
    # Given a multipart upload whose parts are all uploaded
    target = target_of(store, BIG)
    assert target.multipart is not None
    put_blob(store, target, BIG)
    parts = parts_of(target)
    upload_id = target.multipart.upload_id
    # When it is completed with a wrong ETag, out of order, or with a part that was never sent
    for wrong, code in [
        ([*parts[:2], Part(part_number=3, etag='"' + "0" * 32 + '"')], "invalid_part"),
        ([parts[1], parts[0], parts[2]], "invalid_part_order"),
        ([*parts, Part(part_number=4, etag=parts[0].etag)], "invalid_part"),
    ]:
        with pytest.raises(Invalid) as error:
            store.complete_multipart(P, BIG_SHA, upload_id, wrong)
        # Then it is refused and no blob is made
        assert error.value.code == code
        assert store.verify(P, [(BIG_SHA, len(BIG))]) == [UnsettledBlob(BIG_SHA, len(BIG))]
    # And the parts stay, so the right list still completes it
    store.complete_multipart(P, BIG_SHA, upload_id, parts)
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == []


def test_a_completion_before_every_part_is_stored_is_refused(store: FolderBlobStore) -> None:
    # Given a multipart upload whose last part was never sent
    target = target_of(store, BIG)
    assert target.multipart is not None
    sent = target.multipart.model_copy(update={"parts": target.multipart.parts[:2]})
    put_blob(store, target.model_copy(update={"multipart": sent}), BIG)
    # When it is completed with the parts that were sent
    with pytest.raises(Invalid) as error:
        store.complete_multipart(P, BIG_SHA, sent.upload_id, parts_of(target)[:2])
    # Then it is refused, naming the part missing, and no blob is made
    assert (error.value.code, error.value.details) == ("invalid_part", {"parts": [3]})
    assert store.find_missing(P, [(BIG_SHA, len(BIG))]) == [(BIG_SHA, len(BIG))]


def test_the_next_upload_of_the_same_content_lists_only_the_parts_not_stored(store: FolderBlobStore) -> None:
    # Given a multipart upload of which parts 1 and 3 were stored before its client was killed
    first = target_of(store, BIG)
    assert first.multipart is not None
    stored = first.multipart.model_copy(update={"parts": [first.multipart.parts[0], first.multipart.parts[2]]})
    put_blob(store, first.model_copy(update={"multipart": stored}), BIG)
    # When the same content is uploaded again
    again = target_of(store, BIG)
    # Then only part 2 is asked for, in the same multipart upload
    assert again.multipart is not None
    assert again.multipart.upload_id == first.multipart.upload_id
    assert [p.part_number for p in again.multipart.parts] == [2]
    # And completing with the part sent now installs the whole blob
    put_blob(store, again, BIG)
    store.complete_multipart(P, BIG_SHA, again.multipart.upload_id, parts_of(again))
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == []


def test_an_upload_whose_every_part_is_stored_completes_without_sending_anything(store: FolderBlobStore) -> None:
    # Given a multipart upload whose parts were all stored, its client killed before completing it
    target = target_of(store, BIG)
    put_blob(store, target, BIG)
    # When the same content is offered again
    missing = store.find_missing(P, [(BIG_SHA, len(BIG))])
    # Then nothing is missing: the stored parts became the blob
    assert missing == []
    assert store.verify(P, [(BIG_SHA, len(BIG))]) == []


def test_parts_of_other_bytes_never_become_the_blob(store: FolderBlobStore) -> None:
    # Given a multipart upload whose first part was PUT with other bytes of the right length
    target = target_of(store, BIG)
    assert target.multipart is not None
    other = b"\0" * MiB + BIG[MiB:]
    put_blob(store, target, other)
    # When it is completed with the ETags of what was uploaded
    with pytest.raises(Invalid) as error:
        store.complete_multipart(P, BIG_SHA, target.multipart.upload_id, parts_of(target))
    # Then the whole does not hash to the blob's address, and nothing is installed
    assert error.value.code == "bad_digest"
    assert store.find_missing(P, [(BIG_SHA, len(BIG))]) == [(BIG_SHA, len(BIG))]


def test_a_part_url_binds_its_part(store: FolderBlobStore) -> None:
    # Given the URL of part 1 of a multipart upload
    target = target_of(store, BIG)
    assert target.multipart is not None
    url = target.multipart.parts[0].url
    # When it is used with a shorter body, or its path is changed to part 2
    # Then both are refused
    with pytest.raises(Invalid):
        put(store, url, BIG[:100])
    with pytest.raises(Forbidden):
        put(store, url.replace("/1?", "/2?"), BIG[:MiB])


# ---------------------------------------------------------------- remote references and manifests


def test_a_file_uri_of_an_existing_file_is_pinned(tmp_path: Path) -> None:
    # Given a local file under a folder the server may pin from, a missing one, and an S3 object out of reach
    store = FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0", file_roots=[tmp_path])
    data = tmp_path / "train.csv"
    data.write_bytes(b"a,b\n1,2\n")
    # When they are pinned
    pinned = store.pin_remote(RemoteSpec(uri=data.as_uri(), path="raw/train.csv"))
    missing = store.pin_remote(RemoteSpec(uri=(tmp_path / "nope").as_uri(), path="raw/nope"))
    s3 = store.pin_remote(RemoteSpec(uri="s3://bucket/x.csv", path="raw/x.csv", metadata={"rows": 1}))
    # Then only the existing local file is verified, with its size and an ETag
    assert (pinned.verified, pinned.size, bool(pinned.etag)) == (True, 8, True)
    assert (missing.verified, missing.size) == (False, None)
    assert (s3.verified, s3.size, s3.metadata) == (False, None, {"rows": 1})


def test_manifest_chunks_come_back_as_written(store: FolderBlobStore) -> None:
    # Given a manifest of two chunks
    digest = "d" * 64
    chunks = [[FileEntry(path="a", size=1, sha256=SHA)], [FileEntry(path="b", size=2, sha256=BIG_SHA)]]
    store.put_manifest(P, digest, [ENTRIES.dump_json(chunk) for chunk in chunks])
    # When its chunks are read
    # Then they are what was written, and a chunk past the end does not exist
    assert [store.get_manifest_chunk(P, digest, i) for i in (0, 1)] == chunks
    with pytest.raises(NotFound):
        store.get_manifest_chunk(P, digest, 2)
