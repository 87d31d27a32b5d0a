"""The folder blob store's bundles: one signed request carrying many small blobs, each written and
checked as its own PUT would be, and one signed GET answering many (artreg.local.bundles)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from artreg.local import bundles
from artreg.local.blobs import FolderBlobStore
from artreg.model.errors import Forbidden, Invalid, NotFound
from artreg.model.wire import Bundle
from tests.unit.test_local_blobs import FakeClock

P = "vision"
MiB = 1024**2


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0", multipart_threshold=4 * MiB, clock=clock)


def blobs_of(*contents: bytes) -> dict[str, bytes]:
    return {hashlib.sha256(data).hexdigest(): data for data in contents}


def pairs(blobs: dict[str, bytes]) -> list[tuple[str, int]]:
    return [(sha, len(data)) for sha, data in blobs.items()]


def send(store: FolderBlobStore, url: str, body: bytes, length: int | None = None) -> str:
    split = urlsplit(url)
    signed = store.verify_url("PUT", split.path, split.query)
    return store.receive(signed, io.BytesIO(body), len(body) if length is None else length)


def get(store: FolderBlobStore, url: str) -> bytes:
    split = urlsplit(url)
    return b"".join(store.bundle_pieces(store.verify_url("GET", split.path, split.query)))


def with_query(url: str, **changes: str) -> str:
    split = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(split.query).items()} | changes
    return split._replace(query=urlencode(query)).geturl()


def stored(store: FolderBlobStore, blobs: dict[str, bytes]) -> dict[str, bytes]:
    """The blobs of `blobs` that the store holds, with the bytes it holds."""
    held = {}
    for sha in blobs:
        path = store.root / P / "blobs" / "sha256" / sha[:2] / sha
        if path.exists():
            held[sha] = path.read_bytes()
    return held


def temporaries(store: FolderBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*.tmp")]


@pytest.fixture
def three() -> dict[str, bytes]:
    return blobs_of(b"first shard", b"the second shard", b"3" * 5000)


@pytest.fixture
def offered(store: FolderBlobStore, three: dict[str, bytes]) -> Bundle:
    [bundle] = store.upload_bundles(P, pairs(three))
    return bundle


def body_of(bundle: Bundle, blobs: dict[str, bytes]) -> bytes:
    return b"".join(blobs[sha] for sha in bundle.blobs)


# ---------------------------------------------------------------- what is offered


def test_a_bundle_covers_the_small_missing_blobs_once_each_and_leaves_large_and_lone_ones_alone(
    store: FolderBlobStore,
) -> None:
    # Given missing blobs: two small ones (one listed twice) and one over the bundle bound
    small = blobs_of(b"a" * 10, b"b" * 20)
    large = blobs_of(b"L" * (bundles.SMALL + 1))
    # When the store offers bundles for them, and for one small blob alone
    offered = store.upload_bundles(P, [*pairs(small), *pairs(small), *pairs(large)])
    alone = store.upload_bundles(P, pairs(blobs_of(b"alone")))
    # Then one bundle carries the two small ones, in order, with their total size; a lone blob has none
    assert [(b.blobs, b.size) for b in offered] == [(list(small), 30)]
    assert alone == []


def test_a_thousand_small_blobs_come_as_a_few_even_bundles_within_the_bounds(store: FolderBlobStore) -> None:
    # Given a batch of 1,000 missing small blobs
    many = blobs_of(*[f"blob {i}".encode() for i in range(1000)])
    # When bundles are offered for them
    offered = store.upload_bundles(P, pairs(many))
    # Then each blob is in exactly one bundle of at most MAX_BLOBS, and they are few and even
    assert sorted(sha for b in offered for sha in b.blobs) == sorted(many)
    assert [len(b.blobs) for b in offered] == [250] * 4


# ---------------------------------------------------------------- uploads


def test_a_bundle_upload_stores_exactly_the_listed_blobs_each_verified(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given three missing blobs and the bundle the store offered for them
    assert store.find_missing(P, pairs(three)) == pairs(three)
    # When their bytes are PUT concatenated to the bundle's URL
    send(store, offered.url, body_of(offered, three))
    # Then each is stored at its own address with its own bytes, and nothing else (no temporary file)
    assert stored(store, three) == three
    assert store.find_missing(P, pairs(three)) == []
    assert temporaries(store) == []
    assert store.verify(P, pairs(three)) == []


def test_a_wrong_blob_in_a_bundle_is_refused_by_name_and_never_stored_under_its_sha256(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given a bundle body whose second blob is other bytes of the same length
    second = offered.blobs[1]
    wrong = {**three, second: b"X" * len(three[second])}
    # When it is PUT
    with pytest.raises(Invalid) as refused:
        send(store, offered.url, body_of(offered, wrong))
    # Then the request is refused naming that blob alone; the right ones are stored, the wrong one is not
    assert (refused.value.code, refused.value.details) == ("bad_digest", {"blobs": [second]})
    assert stored(store, three) == {sha: data for sha, data in three.items() if sha != second}
    assert store.find_missing(P, pairs(three)) == [(second, len(three[second]))]
    assert temporaries(store) == []


@pytest.mark.parametrize("extra", [-1, 1])
def test_a_body_shorter_or_longer_than_signed_is_refused_before_anything_is_stored(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle, extra: int
) -> None:
    # Given a bundle body one byte short, or one byte over
    body = body_of(offered, three)
    body = body[:extra] if extra < 0 else body + b"!"
    # When it is PUT with its own length
    with pytest.raises(Invalid) as refused:
        send(store, offered.url, body)
    # Then it is refused for its length, and no blob (nor any part of one) is stored
    assert refused.value.code == "bad_length"
    assert stored(store, three) == {}
    assert temporaries(store) == []


def test_a_body_that_ends_early_stores_only_the_blobs_it_carried_whole(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given a bundle body that declares its full length but breaks off inside its last blob
    body = body_of(offered, three)
    cut = body[: len(body) - 10]
    # When it is received
    with pytest.raises(Invalid) as refused:
        send(store, offered.url, cut, length=len(body))
    # Then it is refused as incomplete; the blobs received whole are stored, nothing of the one cut off
    assert refused.value.code == "incomplete_body"
    last = offered.blobs[-1]
    assert stored(store, three) == {sha: data for sha, data in three.items() if sha != last}
    assert temporaries(store) == []


def test_a_long_bundle_cut_off_stores_every_blob_carried_whole_and_names_the_wrong_one(
    store: FolderBlobStore,
) -> None:
    # Given a bundle of 100 small blobs (the writers take them a few at a time), the 7th one wrong
    many = blobs_of(*(f"shard {i}".encode() for i in range(100)))
    [offered] = store.upload_bundles(P, pairs(many))
    wrong_sha = offered.blobs[6]
    body = body_of(offered, {**many, wrong_sha: b"X" * len(many[wrong_sha])})
    # When the body breaks off inside the 60th blob
    cut_at = sum(len(many[sha]) for sha in offered.blobs[:59]) + 2
    with pytest.raises(Invalid) as refused:
        send(store, offered.url, body[:cut_at], length=len(body))
    # Then it is refused as incomplete; the 58 right blobs before the cut are stored, not the wrong one
    # nor the one cut off nor any after it, and no temporary file is left
    assert refused.value.code == "incomplete_body"
    assert stored(store, many) == {sha: many[sha] for sha in offered.blobs[:59] if sha != wrong_sha}
    assert temporaries(store) == []
    # And the same body sent whole is refused naming the wrong blob alone, every other one stored
    with pytest.raises(Invalid) as named:
        send(store, offered.url, body)
    assert (named.value.code, named.value.details) == ("bad_digest", {"blobs": [wrong_sha]})
    assert stored(store, many) == {sha: data for sha, data in many.items() if sha != wrong_sha}


def test_a_bundle_stores_a_condemned_blob_anew_and_lifts_the_condemnation(
    store: FolderBlobStore, clock: FakeClock, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given the blobs stored, then one condemned by the janitor (so an upload counts it missing)
    send(store, offered.url, body_of(offered, three))
    first = next(iter(three))
    [blob] = [b for b in store.unlisted_blobs(P, listed=set()) if b.sha256 == first]
    store.condemn(P, blob, clock.now())
    assert store.find_missing(P, pairs(three)) == [(first, len(three[first]))]
    # When a new bundle sends its bytes again
    [again] = store.upload_bundles(P, [*pairs({first: three[first]}), *pairs(blobs_of(b"another"))])
    send(store, again.url, body_of(again, {**three, **blobs_of(b"another")}))
    # Then it is a stored blob again, no longer condemned
    assert store.find_missing(P, pairs(three)) == []


def test_without_syncfs_each_blob_of_a_bundle_is_fsynced(tmp_path: Path, three: dict[str, bytes]) -> None:
    # Given a store where the file system has no syncfs
    with mock.patch("artreg.local.blob_files.SYNCFS", None):
        store = FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0")
    [bundle] = store.upload_bundles(P, pairs(three))
    # When a bundle of three blobs is PUT
    with mock.patch("os.fsync") as fsync:
        send(store, bundle.url, body_of(bundle, three))
    # Then each was fsync'd before it was answered
    assert fsync.call_count == 3
    assert store.verify(P, pairs(three)) == []


# ---------------------------------------------------------------- the URL names the blobs


@pytest.mark.parametrize("change", [{"sig": "0" * 64}, {"size": "1"}, {"expires": "9999999999"}])
def test_a_tampered_bundle_url_is_refused(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle, change: dict[str, str]
) -> None:
    # When the bundle URL's signature, size or expiry is changed
    with pytest.raises(Forbidden) as refused:
        send(store, with_query(offered.url, **change), body_of(offered, three))
    # Then it is refused, and nothing is stored
    assert refused.value.code == "signature_mismatch"
    assert stored(store, three) == {}


def test_a_bundle_url_cannot_be_pointed_at_other_blobs(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given another bundle's record, for other blobs
    others = blobs_of(b"other one", b"other two")
    [other] = store.upload_bundles(P, pairs(others))
    # When the first bundle's signed query is sent to the other bundle's path, or its record is rewritten
    forged = urlsplit(other.url)._replace(query=urlsplit(offered.url).query).geturl()
    with pytest.raises(Forbidden):
        send(store, forged, body_of(other, others))
    record = store.root / P / "bundles" / f"{urlsplit(offered.url).path.rsplit('/', 1)[1]}.json"
    record.write_text(f'[["{next(iter(others))}", {len(next(iter(others.values())))}]]')
    with pytest.raises(Forbidden):
        send(store, offered.url, body_of(offered, three))
    # Then nothing of either was stored
    assert stored(store, {**three, **others}) == {}


def test_an_expired_bundle_url_is_refused(
    store: FolderBlobStore, clock: FakeClock, three: dict[str, bytes], offered: Bundle
) -> None:
    # When the bundle URL is used after its expiry
    clock.at += timedelta(seconds=store.presign_seconds + 1)
    with pytest.raises(Forbidden) as refused:
        send(store, offered.url, body_of(offered, three))
    # Then it is refused as expired
    assert refused.value.code == "url_expired"


def test_an_upload_bundle_url_does_not_read_and_a_download_one_does_not_write(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given the blobs stored, and a download bundle of them
    send(store, offered.url, body_of(offered, three))
    [download] = store.download_bundles(P, pairs(three))
    # When each URL is used with the other method
    for url, method in ((offered.url, "GET"), (download.url, "PUT")):
        split = urlsplit(url)
        with pytest.raises(Forbidden):
            store.verify_url(method, split.path, split.query)


# ---------------------------------------------------------------- downloads


def test_a_download_bundle_answers_the_blobs_concatenated_in_its_order(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given stored blobs
    send(store, offered.url, body_of(offered, three))
    # When a download bundle of them is offered and read
    [download] = store.download_bundles(P, pairs(three))
    # Then its bytes are the blobs' in the listed order
    assert get(store, download.url) == body_of(download, three)


def test_a_download_bundle_of_a_blob_gone_since_is_not_found(
    store: FolderBlobStore, three: dict[str, bytes], offered: Bundle
) -> None:
    # Given a download bundle, then one of its blobs removed
    send(store, offered.url, body_of(offered, three))
    [download] = store.download_bundles(P, pairs(three))
    gone = download.blobs[0]
    (store.root / P / "blobs" / "sha256" / gone[:2] / gone).unlink()
    # When it is read
    with pytest.raises(NotFound):
        get(store, download.url)


def test_stale_bundle_records_are_removed(store: FolderBlobStore, clock: FakeClock, offered: Bundle) -> None:
    # Given a bundle record, then two days later
    assert len(list((store.root / P / "bundles").iterdir())) == 1
    offered_at, clock.at = clock.at, datetime.now(UTC) + timedelta(days=2)
    # When the temporary files untouched for a day are removed, and the URL is used (within its time)
    removed = store.remove_stale_temporary(older_than=timedelta(days=1).total_seconds())
    clock.at = offered_at
    # Then the record is gone, and its URL finds no bundle
    assert removed == 1
    assert list((store.root / P / "bundles").iterdir()) == []
    with pytest.raises(NotFound):
        send(store, offered.url, b"x" * offered.size)
