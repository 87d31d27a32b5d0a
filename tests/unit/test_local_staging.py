"""The folder blob store's staged blobs: bytes sent to a signed URL before their SHA-256 is known,
stored under the SHA-256 the store computes itself (artreg.local.staging)."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from artreg.local.blobs import FolderBlobStore
from artreg.model.errors import ArtregError, Forbidden, Invalid
from artreg.model.wire import StagingTarget
from artreg.registry.records import StoredBlob
from tests.unit.test_local_blobs import FakeClock

P = "vision"
MiB = 1024**2
DATA = b"checkpoint " * 20_000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0", multipart_threshold=MiB, clock=clock)


def url_for(store: FolderBlobStore, size: int = len(DATA)) -> str:
    [target] = store.staging_targets(P, [size])
    assert target.url is not None
    return target.url


def send(store: FolderBlobStore, url: str, body: bytes, length: int | None = None, method: str = "PUT") -> str:
    split = urlsplit(url)
    signed = store.verify_url(method, split.path, split.query)
    return store.receive(signed, io.BytesIO(body), len(body) if length is None else length)


def with_query(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()} | changes
    return split._replace(query=urlencode(query)).geturl()


def blob_path(store: FolderBlobStore, sha256: str) -> Path:
    return store.root / P / "blobs" / "sha256" / sha256[:2] / sha256


def files(store: FolderBlobStore) -> list[Path]:
    """Every file the store holds besides its key: blobs, and any temporary one left."""
    return sorted(p for p in store.root.rglob("*") if p.is_file() and p.name != ".secret")


def test_a_url_is_offered_for_each_size_up_to_the_multipart_threshold(store: FolderBlobStore) -> None:
    # When URLs are asked for an empty file, a file at the threshold and one over it
    offered = store.staging_targets(P, [0, MiB, MiB + 1])
    # Then only the one at the threshold gets one (an empty blob is no transfer; a larger one goes in
    # parts, which a killed client resumes), each answer naming its size in the order asked
    assert [t.size for t in offered] == [0, MiB, MiB + 1]
    assert [t.url is not None for t in offered] == [False, True, False]


def test_two_urls_for_the_same_size_are_different_urls(store: FolderBlobStore) -> None:
    # Then no two clients share a staging URL (its id is drawn at random, not made of the request)
    first, second = store.staging_targets(P, [len(DATA), len(DATA)])
    assert first.url != second.url


def test_a_staged_body_is_stored_under_the_sha256_the_store_computed(store: FolderBlobStore) -> None:
    # When a body is sent to a staging URL
    etag = send(store, url_for(store), DATA)
    # Then the answer is its SHA-256, the blob is stored under it, and nothing else is left
    assert etag == f'"{SHA}"'
    assert blob_path(store, SHA).read_bytes() == DATA
    assert files(store) == [blob_path(store, SHA)]
    # And an upload of that content finds it stored
    assert store.find_missing(P, [(SHA, len(DATA))]) == []


@pytest.mark.parametrize("length", [len(DATA) - 1, len(DATA) + 1])
def test_a_body_of_another_length_than_signed_is_refused_and_stores_nothing(
    store: FolderBlobStore, length: int
) -> None:
    # When a body declared one byte short or one byte over the signed size is sent
    with pytest.raises(Invalid) as refused:
        send(store, url_for(store), DATA[:length] if length < len(DATA) else DATA + b"!", length)
    # Then it is refused (before a byte is read) and nothing is stored
    assert refused.value.code == "bad_length"
    assert files(store) == []


def test_a_body_that_ends_early_installs_nothing(store: FolderBlobStore) -> None:
    # When the body ends before its declared length (a client gone mid-way)
    with pytest.raises(Invalid) as refused:
        send(store, url_for(store), DATA[: len(DATA) // 2], len(DATA))
    # Then nothing is stored, not even the half received
    assert refused.value.code == "incomplete_body"
    assert files(store) == []


@pytest.mark.parametrize(
    "tamper",
    [{"size": str(len(DATA) + 1)}, {"expires": "99999999999"}, {"sig": "0" * 64}],
)
def test_a_tampered_staging_url_is_refused(store: FolderBlobStore, tamper: dict[str, str]) -> None:
    with pytest.raises(Forbidden) as refused:
        send(store, with_query(url_for(store), **tamper), DATA)
    assert refused.value.code == "signature_mismatch"
    assert files(store) == []


def test_a_staging_url_for_another_project_or_id_is_refused(store: FolderBlobStore) -> None:
    # Given a staging URL, and the same URL with another project or another id in its path
    url = url_for(store)
    split = urlsplit(url)
    project, staging_id = split.path.split("/")[2], split.path.split("/")[4]
    for path in (split.path.replace(f"/{project}/", "/other/"), split.path.replace(staging_id, "f" * 32)):
        # Then neither is accepted: the signature covers the whole path
        with pytest.raises(Forbidden):
            send(store, split._replace(path=path).geturl(), DATA)
    assert files(store) == []


def test_an_expired_staging_url_is_refused(store: FolderBlobStore, clock: FakeClock) -> None:
    url = url_for(store)
    clock.at += timedelta(seconds=store.presign_seconds + 1)
    with pytest.raises(Forbidden) as refused:
        send(store, url, DATA)
    assert refused.value.code == "url_expired"


def test_a_staging_url_takes_no_get(store: FolderBlobStore) -> None:
    # Then its URL reads nothing back: it is signed for a PUT only
    send(store, url_for(store), DATA)
    with pytest.raises(ArtregError) as refused:
        send(store, url_for(store), b"", method="GET")
    assert refused.value.status == 403


def test_content_already_stored_keeps_its_copy_and_drops_the_staged_one(store: FolderBlobStore) -> None:
    # Given the blob stored already
    send(store, url_for(store), DATA)
    before = blob_path(store, SHA).stat().st_ino
    # When the same content is staged again
    etag = send(store, url_for(store), DATA)
    # Then the answer names it, the stored copy is the one kept, and nothing else is left
    assert etag == f'"{SHA}"'
    assert blob_path(store, SHA).stat().st_ino == before
    assert files(store) == [blob_path(store, SHA)]


def test_a_condemned_copy_is_replaced_by_the_staged_one(store: FolderBlobStore, clock: FakeClock) -> None:
    # Given the blob stored, then condemned by the janitor (no version listed it)
    send(store, url_for(store), DATA)
    path = blob_path(store, SHA)
    condemned = StoredBlob(SHA, len(DATA), clock.now(), str(path.stat().st_ino))
    store.condemn(P, condemned, clock.now())
    # When the same content is staged again
    send(store, url_for(store), DATA)
    # Then a new copy is in place, no longer condemned: the janitor's removal of the old one spares it
    assert path.stat().st_ino != int(condemned.generation)
    assert store.reclaim(P, condemned) is False
    assert path.read_bytes() == DATA


def test_a_staged_blob_no_version_lists_is_reclaimed_like_any_other(store: FolderBlobStore, clock: FakeClock) -> None:
    # Given a staged blob whose client never committed an upload listing it
    send(store, url_for(store), DATA)
    # Then the janitor's scan finds it among the unlisted blobs, and reclaims it once condemned
    [unlisted] = list(store.unlisted_blobs(P, listed=set()))
    assert unlisted.sha256 == SHA
    store.condemn(P, unlisted, clock.now())
    assert store.reclaim(P, unlisted) is True
    assert files(store) == []


def test_a_staged_body_left_by_a_killed_server_is_removed_once_stale(store: FolderBlobStore) -> None:
    # Given the temporary file of a staged body whose server was killed mid-way (it wrote the file
    # beside the others a staged body goes to), untouched for an hour
    [target] = store.staging_targets(P, [len(DATA)])
    assert target.url is not None
    staging_id = urlsplit(target.url).path.rsplit("/", 1)[-1]
    left = store.root / P / "staging" / f".{staging_id}.x1y2.tmp"
    left.parent.mkdir(parents=True)
    left.write_bytes(DATA[:100])
    hour_ago = store.clock.now().timestamp() - 3600
    os.utime(left, (hour_ago, hour_ago))
    # When the janitor removes stale temporary files
    removed = store.remove_stale_temporary(older_than=600)
    # Then it is gone
    assert removed == 1
    assert files(store) == []


# ---------------------------------------------------------------- over the threshold: the handoff socket only


def handoff_targets(store: FolderBlobStore, sizes: list[int]) -> list[StagingTarget]:
    """The staging answer a client on the server's machine that asks gets (`local.handoff.offer_large`)."""
    return store.staging.offer_handoff(P, store.staging_targets(P, sizes), store.multipart_threshold)


def test_a_client_that_hands_off_is_offered_urls_over_the_threshold_for_the_socket_only(
    store: FolderBlobStore,
) -> None:
    # When URLs are asked for an empty file, one at the threshold and two over it, by a client that hands off
    offered = handoff_targets(store, [0, MiB, MiB + 1, 5 * 1024**3])
    # Then the sizes over the threshold get a URL too, marked for the socket only; the others are as offered to all
    assert [t.size for t in offered] == [0, MiB, MiB + 1, 5 * 1024**3]
    assert [t.url is not None for t in offered] == [False, True, True, True]
    assert [t.handoff_only for t in offered] == [False, False, True, True]


def test_a_put_to_a_staging_url_over_the_threshold_is_refused_and_writes_nothing(store: FolderBlobStore) -> None:
    # Given a URL over the threshold, offered for the handoff socket
    [target] = handoff_targets(store, [MiB + 1])
    assert target.url is not None
    body = os.urandom(MiB + 1)
    # When its bytes are PUT to it over HTTP
    with pytest.raises(Forbidden) as refused:
        send(store, target.url, body)
    # Then it is refused with its reason (a file that large goes in parts over HTTP), and nothing is written
    assert (refused.value.status, refused.value.code) == (403, "handoff_only")
    assert files(store) == []
    # And without the mark that says so, its signature (for the socket, not a PUT) does not match either
    split = urlsplit(target.url)
    unmarked = split._replace(query="&".join(p for p in split.query.split("&") if p != "via=handoff")).geturl()
    with pytest.raises(Forbidden) as refused:
        send(store, unmarked, body)
    assert refused.value.code == "signature_mismatch"
    assert files(store) == []


def test_a_url_at_the_threshold_marked_for_the_socket_is_not_taken_there(store: FolderBlobStore) -> None:
    # Given a PUT URL, marked as if it were for the socket
    url = f"{url_for(store)}&via=handoff"
    split = urlsplit(url)
    # Then the socket's verification refuses it: the signature binds the method it was made for
    with pytest.raises(Forbidden) as refused:
        store.verify_url("HANDOFF", split.path, split.query)
    assert refused.value.code == "signature_mismatch"
