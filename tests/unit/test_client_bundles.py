"""The SDK's side of bundles without a server (artreg.client.bundles): an upload's small blobs go in the
bundles offered, falling back to each blob's own URL when a bundle is refused or unreachable; a
download's bundle is split by sizes, each blob checked, and what it did not bring is fetched alone."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3.exceptions as u3

from artreg.client import RetryPolicy, StreamBroken, bundles
from artreg.client.errors import Forbidden
from artreg.client.files import HashedFile
from artreg.client.http import Transport
from artreg.client.transfer import BlobCache, Downloader, upload_blobs
from artreg.model.wire import Bundle, DownloadFile, MissingBlob
from tests.support.urllib3_answer import Urllib3Answer

NO_SLEEP = RetryPolicy(sleep=lambda _: None)
BUNDLE_URL = "http://127.0.0.1:1/blobs/p/bundles/" + "b" * 32


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CONTENTS = [b"first", b"second!", b"third file"]


class BlobPool:
    """Stands in for urllib3: answers PUTs as a blob store would (a bundle's by `bundle_answer`),
    recording what each URL received."""

    def __init__(self, bundle_answer: list[Any]) -> None:
        self.bundle_answer = bundle_answer  # per try: a status, or an exception to raise
        self.received: dict[str, list[bytes]] = {}
        self.refusal = b'{"error": {"code": "signature_mismatch", "message": "not this URL"}}'

    def request(self, method: str, url: str, body: Iterable[bytes] | None = None, **_: Any) -> Urllib3Answer:
        data = b"".join(body or [])
        self.received.setdefault(url, []).append(data)
        if url == BUNDLE_URL:
            answer = self.bundle_answer.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return Urllib3Answer(answer, self.refusal if answer >= 400 else b"")
        return Urllib3Answer(200, headers={"ETag": '"x"'})


def upload(tmp_path: Path, pool: BlobPool) -> None:
    sources: dict[str, HashedFile] = {}
    missing = []
    for i, data in enumerate(CONTENTS):
        path = tmp_path / f"f{i}"
        path.write_bytes(data)
        sources[sha(data)] = HashedFile(path=f"f{i}", source=str(path), size=len(data), sha256=sha(data))
        missing.append(MissingBlob(sha256=sha(data), size=len(data), url=f"http://127.0.0.1:1/blobs/p/{sha(data)}"))
    bundle = Bundle(url=BUNDLE_URL, blobs=[sha(d) for d in CONTENTS], size=sum(map(len, CONTENTS)))
    transport = Transport("http://127.0.0.1:1", pool=pool, retry=NO_SLEEP)
    upload_blobs(transport, missing, sources, complete=lambda *_: None, workers=2, bundles=[bundle])


def own_puts(pool: BlobPool) -> dict[str, bytes]:
    return {url.rsplit("/", 1)[1]: bodies[-1] for url, bodies in pool.received.items() if url != BUNDLE_URL}


def test_the_small_blobs_go_in_the_bundle_offered(tmp_path: Path) -> None:
    # Given a blob store that takes the bundle
    pool = BlobPool([200])
    # When three missing blobs are uploaded with a bundle offered for them
    upload(tmp_path, pool)
    # Then one PUT carried their bytes concatenated in the bundle's order, and no blob went alone
    assert pool.received == {BUNDLE_URL: [b"".join(CONTENTS)]}


def test_a_refused_bundle_falls_back_to_each_blobs_own_url(tmp_path: Path) -> None:
    # Given a blob store that refuses the bundle
    pool = BlobPool([403])
    # When the blobs are uploaded
    upload(tmp_path, pool)
    # Then each blob was PUT to its own URL with its own bytes
    assert own_puts(pool) == {sha(d): d for d in CONTENTS}


def test_a_bundle_refused_for_some_blobs_sends_only_those_again(tmp_path: Path) -> None:
    # Given a blob store that stores the bundle's blobs but the second, and says so
    pool = BlobPool([400])
    second = sha(CONTENTS[1])
    refusal = {"error": {"code": "bad_digest", "message": "not these bytes", "details": {"blobs": [second]}}}
    pool.refusal = json.dumps(refusal).encode()
    # When the blobs are uploaded
    upload(tmp_path, pool)
    # Then only the second was PUT again, to its own URL
    assert own_puts(pool) == {second: CONTENTS[1]}


def test_a_bundle_that_meets_network_errors_is_retried_then_sent_blob_by_blob(tmp_path: Path) -> None:
    # Given a blob store whose connection drops once, then answers
    dropped = BlobPool([u3.ProtocolError("reset"), 200])
    # When the blobs are uploaded
    upload(tmp_path, dropped)
    # Then the bundle was sent again, whole, and no blob alone
    assert dropped.received == {BUNDLE_URL: [b"".join(CONTENTS)] * 2}

    # Given one that never answers the bundle
    unreachable = BlobPool([u3.ProtocolError("reset")] * NO_SLEEP.attempts)
    # When the blobs are uploaded
    upload(tmp_path, unreachable)
    # Then after the bundle's tries each blob went to its own URL
    assert len(unreachable.received[BUNDLE_URL]) == NO_SLEEP.attempts
    assert own_puts(unreachable) == {sha(d): d for d in CONTENTS}


# ---------------------------------------------------------------- downloads


def files_of(contents: list[bytes]) -> list[DownloadFile]:
    return [
        DownloadFile(path=f"d/{i}.bin", size=len(d), sha256=sha(d), url=f"https://blobs.example/{sha(d)}")
        for i, d in enumerate(contents)
    ]


class Served:
    """Serves each blob's URL, and the bundle's as `bundle_chunks` says (a list of chunks, or an error)."""

    def __init__(self, contents: list[bytes], bundle: Iterable[bytes] | BaseException) -> None:
        self.by_url: Mapping[str, bytes] = {f"https://blobs.example/{sha(d)}": d for d in contents}
        self.bundle = bundle
        self.fetched: list[str] = []

    def __call__(self, url: str) -> Iterator[bytes]:
        self.fetched.append(url)
        if url == BUNDLE_URL:
            if isinstance(self.bundle, BaseException):
                raise self.bundle
            yield from self.bundle
            return
        yield self.by_url[url]


def download(tmp_path: Path, served: Served, cache: BlobCache | None = None) -> None:
    bundle = Bundle(url=BUNDLE_URL, blobs=[sha(d) for d in CONTENTS], size=sum(map(len, CONTENTS)))
    bundles.download(Downloader(served, cache=cache, retry=NO_SLEEP), tmp_path / "out", files_of(CONTENTS), [bundle])


def written(tmp_path: Path) -> dict[str, bytes]:
    out = tmp_path / "out"
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


EXPECTED = {f"d/{i}.bin": d for i, d in enumerate(CONTENTS)}


def test_a_bundle_is_split_by_sizes_into_checked_files_and_the_cache(tmp_path: Path) -> None:
    # Given a bundle served in chunks that cut across the blobs
    whole = b"".join(CONTENTS)
    served = Served(CONTENTS, [whole[i : i + 4] for i in range(0, len(whole), 4)])
    cache = BlobCache(tmp_path / "cache")
    # When the files are downloaded through it
    download(tmp_path, served, cache)
    # Then every file holds its bytes, fetched in that one request, and the cache holds each blob
    assert written(tmp_path) == EXPECTED
    assert served.fetched == [BUNDLE_URL]
    assert all(cache.get(sha(d), len(d)) is not None for d in CONTENTS)


def test_a_wrong_blob_in_a_bundle_is_never_written_and_is_fetched_alone(tmp_path: Path) -> None:
    # Given a bundle whose second blob comes with other bytes of its length
    served = Served(CONTENTS, [CONTENTS[0] + b"X" * len(CONTENTS[1]) + CONTENTS[2]])
    # When the files are downloaded
    download(tmp_path, served)
    # Then the second was fetched from its own URL, and every file holds its own bytes
    assert served.fetched == [BUNDLE_URL, f"https://blobs.example/{sha(CONTENTS[1])}"]
    assert written(tmp_path) == EXPECTED


@pytest.mark.parametrize(
    "bundle",
    [[CONTENTS[0], CONTENTS[1][:3]], Forbidden("url_expired"), [b"".join(CONTENTS) + b"more than listed"]],
    ids=["broken off", "refused", "overlong"],
)
def test_what_a_bundle_did_not_bring_is_fetched_blob_by_blob(tmp_path: Path, bundle: Any) -> None:
    # Given a bundle that breaks off, is refused, or runs on past its blobs
    if isinstance(bundle, list) and len(bundle) == 2:
        chunks = bundle

        def broken() -> Iterator[bytes]:
            yield from chunks
            raise StreamBroken("connection reset")

        bundle = broken()
    served = Served(CONTENTS, bundle)
    # When the files are downloaded
    download(tmp_path, served)
    # Then every file holds its own bytes
    assert written(tmp_path) == EXPECTED


def test_many_small_files_go_to_the_threads_in_slices_not_one_task_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 600 small blobs offered in two bundles, and a count of the tasks handed to threads
    contents = [f"file {i}".encode() for i in range(600)]
    halves = {f"{BUNDLE_URL}{n}": contents[n * 300 : (n + 1) * 300] for n in range(2)}
    offered = [Bundle(url=url, blobs=[sha(d) for d in half], size=sum(map(len, half))) for url, half in halves.items()]
    fetched: list[str] = []

    def fetch(url: str) -> Iterator[bytes]:
        fetched.append(url)
        yield b"".join(halves[url])

    submitted: list[Any] = []
    submit = ThreadPoolExecutor.submit

    def counting(pool: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        submitted.append(fn)
        return submit(pool, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", counting)
    cache = BlobCache(tmp_path / "cache")
    # When they are downloaded into an empty folder
    bundles.download(Downloader(fetch, cache=cache, retry=NO_SLEEP), tmp_path / "out", files_of(contents), offered)
    # Then every file holds its bytes and is cached, from the two bundles alone, and the threads were
    # given a task per slice of files, not one per file (which cost more than a small file's writing)
    assert written(tmp_path) == {f"d/{i}.bin": d for i, d in enumerate(contents)}
    assert all(cache.get(sha(d), len(d)) is not None for d in contents)
    assert sorted(fetched) == sorted(halves)
    assert len(submitted) < len(contents) // 10
