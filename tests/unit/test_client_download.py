"""The SDK's download side without a server: the path guard, verification, temp-file cleanup and the
local content cache, driven by a fake fetcher."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from artreg.client import IntegrityError, Invalid, RetryPolicy, StreamBroken, transfer
from artreg.client.transfer import BlobCache, Downloader, destination
from artreg.model.wire import DownloadFile


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(path: str, data: bytes, url: str | None = None) -> DownloadFile:
    return DownloadFile(path=path, size=len(data), sha256=_sha(data), url=url or f"https://blobs.example/{_sha(data)}")


class FakeFetch:
    """Serves bytes by URL, in small chunks, and counts the fetches."""

    def __init__(self, blobs: dict[str, bytes], chunk: int = 3) -> None:
        self.blobs = blobs
        self.chunk = chunk
        self.fetched: list[str] = []

    def __call__(self, url: str) -> Iterator[bytes]:
        self.fetched.append(url)
        data = self.blobs[url]
        for i in range(0, len(data), self.chunk):
            yield data[i : i + self.chunk]


def _fetch_for(*files: tuple[DownloadFile, bytes]) -> FakeFetch:
    return FakeFetch({f.url: data for f, data in files})


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


NO_SLEEP = RetryPolicy(sleep=lambda _: None)


@pytest.fixture(params=["small, in memory", "streamed to disk"])
def either_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs a test as blobs up to `transfer.SMALL` are fetched (gathered, then written), and as larger
    ones are (streamed into a temporary file)."""
    if request.param == "streamed to disk":
        monkeypatch.setattr(transfer, "SMALL", -1)


# ---------------------------------------------------------------- the path guard


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/../../x", "a/./b", "a//b", "a\\..\\x", "", "x/..", "..", "\x00"])
def test_destination_refuses_a_path_that_could_leave_the_folder(tmp_path: Path, bad: str) -> None:
    # Given a download folder
    root = os.path.realpath(tmp_path / "out")

    # When a manifest path that breaks the rule is placed / Then it is refused
    with pytest.raises(Invalid):
        destination(root, bad)


@pytest.mark.parametrize("bad", ["D:evil.dll", "models/C:x", "x:stream", "CON", "a/nul.txt", "a/b.", "a/b "])
def test_destination_refuses_a_path_that_windows_reads_as_a_drive_stream_or_device(tmp_path: Path, bad: str) -> None:
    # Given a download folder
    root = os.path.realpath(tmp_path / "out")

    # When a manifest path that Windows would write elsewhere is placed / Then it is refused
    with pytest.raises(Invalid):
        destination(root, bad)


@pytest.mark.parametrize("bad", ["D:evil.dll", "models/C:x", "a/\\\\host\\share"])
def test_the_guard_checks_every_component_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    # Given a path rule that (wrongly) lets a drive-relative component through
    monkeypatch.setattr(transfer, "check_path", lambda path: path)
    root = os.path.realpath(tmp_path / "out")

    # When such a path is placed / Then the guard still refuses it
    with pytest.raises(Invalid):
        destination(root, bad)


def test_destination_refuses_a_folder_that_is_a_link_out_of_the_target(tmp_path: Path) -> None:
    # Given a download folder holding a link to a folder outside it
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)

    # When a path through the link is placed / Then it is refused
    with pytest.raises(Invalid, match="outside the download folder"):
        destination(os.path.realpath(root), "escape/x.txt")


def test_destination_follows_a_link_that_stays_inside(tmp_path: Path) -> None:
    # Given a download folder with a link to a folder inside it
    root = tmp_path / "out"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)

    # When a path through the link is placed / Then it lands in the real folder
    assert destination(os.path.realpath(root), "alias/x.txt") == os.path.join(os.path.realpath(root), "real", "x.txt")


def test_a_manifest_with_one_unsafe_path_writes_nothing(tmp_path: Path) -> None:
    # Given a manifest with good files and one that leaves the folder through a link
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "out"
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    good, bad = _file("good.txt", b"good"), _file("escape/pwned.txt", b"evil")
    fetch = _fetch_for((good, b"good"), (bad, b"evil"))

    # When it is downloaded
    with pytest.raises(Invalid):
        Downloader(fetch, workers=2).download(root, [good, bad])

    # Then nothing was fetched or written, inside or outside
    assert fetch.fetched == []
    assert _tree(outside) == []
    assert _tree(root) == ["escape"]


def test_a_link_at_the_destination_is_replaced_not_written_through(tmp_path: Path) -> None:
    # Given a download folder whose file is a link to a file outside it
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    root = tmp_path / "out"
    root.mkdir()
    (root / "model.pt").symlink_to(victim)
    model = _file("model.pt", b"weights")

    # When the file is downloaded
    Downloader(_fetch_for((model, b"weights"))).download(root, [model])

    # Then the link was replaced by the file and its target left alone
    assert not (root / "model.pt").is_symlink()
    assert (root / "model.pt").read_bytes() == b"weights"
    assert victim.read_bytes() == b"keep me"


# ---------------------------------------------------------------- verification


@pytest.mark.usefixtures("either_path")
def test_files_are_verified_and_placed(tmp_path: Path) -> None:
    # Given a manifest of nested files
    a, b = _file("a.txt", b"alpha"), _file("deep/er/b.bin", b"bravo" * 100)
    fetch = _fetch_for((a, b"alpha"), (b, b"bravo" * 100))

    # When it is downloaded
    stats = Downloader(fetch, workers=2).download(tmp_path / "out", [a, b])

    # Then every file is in place, and no temporary file stays behind
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "deep" / "er" / "b.bin").read_bytes() == b"bravo" * 100
    assert _tree(tmp_path / "out") == ["a.txt", "deep", "deep/er", "deep/er/b.bin"]
    assert (stats.downloaded, stats.skipped, stats.bytes) == (2, 0, 505)


@pytest.mark.usefixtures("either_path")
@pytest.mark.parametrize("served", [b"other bytes", b"short", b"weights plus more"])
def test_a_mismatch_raises_and_leaves_no_file(tmp_path: Path, served: bytes) -> None:
    # Given a blob store that serves other bytes than the manifest says
    model = _file("model.pt", b"weights")
    fetch = FakeFetch({model.url: served})

    # When it is downloaded
    with pytest.raises(IntegrityError):
        Downloader(fetch).download(tmp_path / "out", [model])

    # Then neither the file nor a temporary file is left
    assert _tree(tmp_path / "out") == []


@pytest.mark.usefixtures("either_path")
def test_a_broken_stream_is_started_over(tmp_path: Path) -> None:
    # Given a blob store whose first answer breaks off midway
    model = _file("model.pt", b"weights")
    tries: list[int] = []

    def flaky(url: str) -> Iterator[bytes]:
        tries.append(1)
        yield b"wei"
        if len(tries) == 1:
            raise StreamBroken("connection reset")
        yield b"ghts"

    # When it is downloaded
    Downloader(flaky, retry=NO_SLEEP).download(tmp_path / "out", [model])

    # Then the second try wrote the whole file, and nothing else is left
    assert len(tries) == 2
    assert _tree(tmp_path / "out") == ["model.pt"]
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"weights"


def test_a_file_already_in_place_is_skipped(tmp_path: Path) -> None:
    # Given a folder that already holds one file with the right content and one with the wrong one
    root = tmp_path / "out"
    root.mkdir()
    (root / "same.txt").write_bytes(b"same")
    (root / "stale.txt").write_bytes(b"old!")
    same, stale = _file("same.txt", b"same"), _file("stale.txt", b"new!")
    fetch = _fetch_for((same, b"same"), (stale, b"new!"))

    # When it is downloaded
    stats = Downloader(fetch).download(root, [same, stale])

    # Then only the stale file was fetched
    assert fetch.fetched == [stale.url]
    assert (root / "stale.txt").read_bytes() == b"new!"
    assert (stats.downloaded, stats.skipped) == (1, 1)


def test_the_same_content_at_two_paths_is_fetched_once(tmp_path: Path) -> None:
    # Given a manifest listing one blob at two paths
    a, b = _file("a.yaml", b"hello"), _file("copy/b.yaml", b"hello")
    fetch = _fetch_for((a, b"hello"))

    # When it is downloaded
    Downloader(fetch).download(tmp_path / "out", [a, b])

    # Then the blob was fetched once and both files are there
    assert len(fetch.fetched) == 1
    assert (tmp_path / "out" / "copy" / "b.yaml").read_bytes() == b"hello"


# ---------------------------------------------------------------- the cache


def test_a_cached_blob_is_used_instead_of_fetching(tmp_path: Path) -> None:
    # Given a cache that holds the blob
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    cached = cache.path_of(model.sha256)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    fetch = _fetch_for((model, b"weights"))

    # When the file is downloaded
    stats = Downloader(fetch, cache=cache).download(tmp_path / "out", [model])

    # Then nothing was fetched and the file came from the cache
    assert fetch.fetched == []
    assert stats.from_cache == 1
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"weights"


@pytest.mark.usefixtures("either_path")
def test_a_fetch_fills_the_cache(tmp_path: Path) -> None:
    # Given an empty cache
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    fetch = _fetch_for((model, b"weights"))

    # When the file is downloaded twice into two folders
    Downloader(fetch, cache=cache).download(tmp_path / "one", [model])
    second = Downloader(fetch, cache=cache).download(tmp_path / "two", [model])

    # Then the cache holds the blob at its content address and the second download used it
    assert cache.path_of(model.sha256) == tmp_path / "cache" / "blobs" / "sha256" / model.sha256[:2] / model.sha256
    assert cache.path_of(model.sha256).read_bytes() == b"weights"
    assert len(fetch.fetched) == 1
    assert second.from_cache == 1


def test_a_spoiled_cache_entry_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    # Given a cache entry of the right size and the wrong bytes (a hard link edited in place)
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    cached = cache.path_of(model.sha256)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"WEIGHTS")
    fetch = _fetch_for((model, b"weights"))

    # When the file is downloaded
    stats = Downloader(fetch, cache=cache).download(tmp_path / "out", [model])

    # Then it was fetched, and the cache now holds the right bytes
    assert fetch.fetched == [model.url]
    assert stats.downloaded == 1
    assert (tmp_path / "out" / "model.pt").read_bytes() == b"weights"
    assert cached.read_bytes() == b"weights"


def test_a_sha256_that_is_not_one_never_becomes_a_cache_path(tmp_path: Path) -> None:
    # Given a manifest entry whose "sha256" tries to climb out of the cache
    entry = DownloadFile(path="x", size=1, sha256="../../../../etc/passwd", url="https://blobs.example/x")

    # When it is downloaded / Then it is refused before anything happens
    with pytest.raises(Invalid):
        Downloader(FakeFetch({}), cache=BlobCache(tmp_path / "cache")).download(tmp_path / "out", [entry])
    assert not (tmp_path / "cache").exists()


@pytest.mark.usefixtures("either_path")
def test_appending_to_a_downloaded_file_changes_neither_the_cache_nor_another_download(tmp_path: Path) -> None:
    # Given a blob downloaded into one folder (filling the cache), then into another from the cache
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    fetch = _fetch_for((model, b"weights"))
    Downloader(fetch, cache=cache).download(tmp_path / "one", [model])
    second = Downloader(fetch, cache=cache).download(tmp_path / "two", [model])
    assert second.from_cache == 1

    # When the user appends to each downloaded file
    with open(tmp_path / "one" / "model.pt", "ab") as file:
        file.write(b" tuned")
    with open(tmp_path / "two" / "model.pt", "ab") as file:
        file.write(b" pruned")

    # Then the cache and the other folder still hold what was downloaded
    assert cache.path_of(model.sha256).read_bytes() == b"weights"
    assert (tmp_path / "one" / "model.pt").read_bytes() == b"weights tuned"
    assert (tmp_path / "two" / "model.pt").read_bytes() == b"weights pruned"
    third = Downloader(fetch, cache=cache).download(tmp_path / "three", [model])
    assert third.from_cache == 1
    assert (tmp_path / "three" / "model.pt").read_bytes() == b"weights"


@pytest.mark.usefixtures("either_path")
def test_cache_entries_are_read_only(tmp_path: Path) -> None:
    # Given a blob downloaded through the cache
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    Downloader(_fetch_for((model, b"weights")), cache=cache).download(tmp_path / "one", [model])

    # Then its entry is read-only, and the downloaded file is the user's to change
    assert os.stat(cache.path_of(model.sha256)).st_mode & 0o222 == 0
    assert os.stat(tmp_path / "one" / "model.pt").st_mode & 0o200


def test_a_small_blob_entry_is_written_in_place_and_one_cut_short_is_never_used(tmp_path: Path) -> None:
    # Given a cache, and a bundle's blob held in memory
    cache = BlobCache(tmp_path / "cache")
    data = b"weights"
    sha = _sha(data)
    # When it is put in the cache
    cache.put(sha, data)
    # Then its entry holds it, read-only, with no temporary file left beside it
    entry = cache.path_of(sha)
    assert (entry.read_bytes(), os.stat(entry).st_mode & 0o222) == (data, 0)
    assert os.listdir(entry.parent) == [sha]
    # Given an entry cut short (a download killed while writing it)
    entry.unlink()
    entry.write_bytes(data[:3])
    # Then it is not used but dropped, and putting the blob again replaces it
    assert cache.get(sha, len(data)) is None
    entry.write_bytes(data[:3])
    cache.put(sha, data)
    assert cache.get(sha, len(data)) == str(entry)
    assert entry.read_bytes() == data


def test_links_only_when_asked_for_and_then_to_a_read_only_entry(tmp_path: Path) -> None:
    # Given a cached blob
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    fetch = _fetch_for((model, b"weights"))
    Downloader(fetch, cache=cache).download(tmp_path / "one", [model])

    # When it is downloaded again by default, and with links asked for
    Downloader(fetch, cache=cache).download(tmp_path / "copied", [model])
    Downloader(fetch, cache=cache, link=True).download(tmp_path / "linked", [model])

    # Then the default is a file of its own, and the link shares the cache's read-only entry
    entry = os.stat(cache.path_of(model.sha256))
    assert os.stat(tmp_path / "copied" / "model.pt").st_ino != entry.st_ino
    linked = os.stat(tmp_path / "linked" / "model.pt")
    assert linked.st_ino == entry.st_ino
    assert linked.st_mode & 0o222 == 0


def test_a_cache_entry_of_another_size_is_replaced(tmp_path: Path) -> None:
    # Given a cache entry of the wrong size (truncated by a full disk, say)
    cache = BlobCache(tmp_path / "cache")
    model = _file("model.pt", b"weights")
    cached = cache.path_of(model.sha256)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"wei")
    fetch = _fetch_for((model, b"weights"))

    # When the file is downloaded twice
    Downloader(fetch, cache=cache).download(tmp_path / "one", [model])
    second = Downloader(fetch, cache=cache).download(tmp_path / "two", [model])

    # Then the entry was replaced by the right bytes, and the second download used it
    assert cached.read_bytes() == b"weights"
    assert len(fetch.fetched) == 1
    assert second.from_cache == 1


def test_a_copy_without_kernel_help_is_still_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a file system with neither reflinks nor copy_file_range
    import artreg.client.transfer as transfer

    def refuse(*_: object) -> int:
        raise OSError(38, "not implemented")

    monkeypatch.setattr(transfer, "_reflink", lambda src, out: False)
    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    cache = BlobCache(tmp_path / "cache")
    data = os.urandom(3 * 1024 * 1024 + 5)
    model = _file("model.pt", data)
    fetch = _fetch_for((model, data))

    # When a blob is cached and taken from the cache
    Downloader(fetch, cache=cache).download(tmp_path / "one", [model])
    stats = Downloader(fetch, cache=cache).download(tmp_path / "two", [model])

    # Then both copies hold every byte
    assert stats.from_cache == 1
    assert (tmp_path / "two" / "model.pt").read_bytes() == data == cache.path_of(model.sha256).read_bytes()
