"""The hash cache: logging files whose stat did not change reads none of them; any change the stat
shows (size, mtime, inode, ctime) has the file read again. And the streaming pieces a log of many
files goes through: the walk in path order, the digest fed one file at a time, batches cut as they come."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from artreg.client import Artifact
from artreg.client.files import LocalFile, batches, hash_stream, iter_walk, stream_batches
from artreg.client.hashcache import HashCache
from artreg.model import manifest
from artreg.model.errors import Invalid
from artreg.model.wire import FileEntry

HOUR_NS = 3600 * 10**9


def _write(path: Path, data: bytes, *, age_ns: int = HOUR_NS) -> Path:
    """A file whose mtime is `age_ns` in the past: older than the cache's racy window."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    mtime = os.stat(path).st_mtime_ns - age_ns
    os.utime(path, ns=(mtime, mtime))
    return path


def _hash(paths: list[Path], cache: HashCache) -> dict[str, tuple[str, int]]:
    local = [LocalFile(p.name, str(p)) for p in paths]
    return {f.path: (f.sha256, f.size) for f in hash_stream(local, cache=cache, workers=2)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the cache


def test_unchanged_files_are_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    # Given files hashed once through the cache
    paths = [_write(tmp_path / "d" / f"f{i}", f"content {i}".encode()) for i in range(50)]
    cache = HashCache(tmp_path / "cache")
    first = _hash(paths, cache)
    assert len(reads) == 50

    # When they are hashed again, by a new client on the same cache folder
    reads.clear()
    again = _hash(paths, HashCache(tmp_path / "cache"))

    # Then none is read, and the answers are the same
    assert reads == []
    assert again == first == {f"f{i}": (_sha(f"content {i}".encode()), len(f"content {i}")) for i in range(50)}


def test_files_far_apart_among_other_cached_files_are_still_found(tmp_path: Path, reads: list[str]) -> None:
    # Given a cache that knows 1,200 files whose paths sort between two others it knows too
    middle = [_write(tmp_path / "d" / f"m{i:04d}", f"middle {i}".encode()) for i in range(1_200)]
    ends = [_write(tmp_path / "d" / "a", b"first"), _write(tmp_path / "d" / "z", b"last")]
    cache = HashCache(tmp_path / "cache")
    _hash(middle + ends, cache)

    # When only the two files at the ends are hashed again
    reads.clear()
    again = _hash(ends, HashCache(tmp_path / "cache"))

    # Then neither is read: the rows between them do not hide the last one
    assert reads == []
    assert again == {"a": (_sha(b"first"), 5), "z": (_sha(b"last"), 4)}


@pytest.mark.parametrize("change", ["size", "mtime", "inode", "mtime restored"])
def test_a_file_whose_stat_changed_is_read_again(tmp_path: Path, reads: list[str], change: str) -> None:
    # Given a file hashed through the cache
    path = _write(tmp_path / "data.bin", b"AAAA")
    cache = HashCache(tmp_path / "cache")
    _hash([path], cache)
    before = os.stat(path)

    # When its content changes in a way the stat shows
    if change == "size":
        _write(path, b"BBBBBB")
    elif change == "mtime":  # same size, another mtime
        _write(path, b"BBBB", age_ns=2 * HOUR_NS)
    elif change == "inode":  # replaced by another file of the same size and the same mtime
        _write(tmp_path / "new.bin", b"BBBB")
        os.utime(tmp_path / "new.bin", ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(tmp_path / "new.bin", path)
    else:  # rewritten in place, same size, the old mtime put back: only the ctime shows it
        time.sleep(0.05)  # the kernel stamps ctime with a coarse clock (a few ms)
        with open(path, "r+b") as file:
            file.write(b"BBBB")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    reads.clear()
    hashed = _hash([path], cache)

    # Then it is read again and its new content is what is answered
    assert reads == [str(path)]
    assert hashed == {"data.bin": (_sha(b"BBBB" if change != "size" else b"BBBBBB"), 4 if change != "size" else 6)}


def test_a_file_modified_just_now_is_not_remembered(tmp_path: Path, reads: list[str]) -> None:
    # Given a file written this instant (it could change again within the same mtime tick)
    path = _write(tmp_path / "fresh.bin", b"new", age_ns=0)
    cache = HashCache(tmp_path / "cache")

    # When it is hashed twice
    _hash([path], cache)
    _hash([path], cache)

    # Then it was read both times
    assert reads == [str(path)] * 2


def test_a_cache_that_is_not_a_database_only_costs_reading(tmp_path: Path, reads: list[str]) -> None:
    # Given a cache folder whose database is garbage
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "hashes.sqlite").write_bytes(b"not a database" * 100)
    path = _write(tmp_path / "a.bin", b"abc")

    # When files are hashed through it / Then they are read and hashed right
    assert _hash([path], HashCache(tmp_path / "cache")) == {"a.bin": (_sha(b"abc"), 3)}
    assert reads == [str(path)]


def test_the_cache_is_kept_beside_the_download_cache_in_sqlite(tmp_path: Path) -> None:
    # Given a file hashed through the cache at a folder
    path = _write(tmp_path / "a.bin", b"abc")
    _hash([path], HashCache(tmp_path / "cache"))

    # Then the folder holds the database, with the file by its absolute path
    with sqlite3.connect(tmp_path / "cache" / "hashes.sqlite") as db:
        assert db.execute("SELECT path, size, sha256 FROM hashes").fetchall() == [(str(path), 3, _sha(b"abc"))]


# ---------------------------------------------------------------- streaming


NAMES = ["a", "a.txt", "a-b", "a0", "b", "Z", "é", "a b"]


def test_the_walk_gives_files_in_path_order_whatever_the_folders(tmp_path: Path) -> None:
    # Given files and folders whose names sort around `/`
    for name in NAMES:
        _write(tmp_path / "root" / name / "x", b"1")
        _write(tmp_path / "root" / f"{name}.f", b"2")
        _write(tmp_path / "root" / f"{name}0" / f"{name}", b"3")

    # When walked lazily / Then in the order of the logical paths, as the manifest is kept
    paths = [f.path for f in iter_walk(tmp_path / "root")]
    assert paths == sorted(paths)
    assert len(paths) == 3 * len(NAMES)


@pytest.mark.parametrize("bad", ["a:b.txt", "CON", "x.", "nul.txt"])
def test_a_bad_name_among_plain_ones_is_refused_by_the_walk(tmp_path: Path, bad: str) -> None:
    # Given a folder of plain names and one that breaks the path rule, under a prefix
    for i in range(20):
        _write(tmp_path / "root" / "sub" / f"f{i:02d}.bin", b"1")
    _write(tmp_path / "root" / "sub" / bad, b"2")

    # When walked / Then the bad one is refused, by its logical path
    with pytest.raises(Invalid, match=f"data/sub/{re.escape(bad)}"):
        list(iter_walk(tmp_path / "root", "data"))


def test_a_bad_folder_name_is_refused_by_the_walk_though_its_files_are_plain(tmp_path: Path) -> None:
    # Given a folder whose own name breaks the path rule, holding plain names
    _write(tmp_path / "root" / "ok" / "f.bin", b"1")
    _write(tmp_path / "root" / "aux" / "f.bin", b"2")

    # When walked / Then its files are refused
    with pytest.raises(Invalid, match=r"aux/f\.bin"):
        list(iter_walk(tmp_path / "root"))


def test_several_sources_are_merged_in_path_order_and_a_path_twice_is_refused(tmp_path: Path) -> None:
    # Given two folders added under prefixes that interleave
    for i in range(5):
        _write(tmp_path / "one" / f"f{i}", b"1")
        _write(tmp_path / "two" / f"f{i}", b"2")
    art = Artifact("d").add(tmp_path / "one", "data/b").add(tmp_path / "two", "data/a", metadata={"k": 1})

    # When its files are walked / Then they come in path order, each with its own metadata
    walked = list(art.iter_files())
    assert [f.path for f in walked] == sorted(f.path for f in walked)
    assert {f.path: f.metadata for f in walked}["data/a/f0"] == {"k": 1}
    assert {f.path: f.metadata for f in walked}["data/b/f0"] is None

    # When a source gives a path another gives too / Then nothing is walked: it is refused
    art.add(tmp_path / "one" / "f3", "data/a/f3")
    with pytest.raises(Exception, match="added twice"):
        next(art.iter_files())


entries = st.lists(
    st.builds(
        lambda path, data, meta: FileEntry(
            path=path, size=len(data), sha256=_sha(data), **({"metadata": meta} if meta else {})
        ),
        st.text("abcXYZ019-_éü漢", min_size=1, max_size=12),
        st.binary(max_size=8),
        st.one_of(st.none(), st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=4), max_size=2)),
    ),
    max_size=20,
    unique_by=lambda e: e.path,
)


@given(entries)
def test_the_streamed_digest_is_the_canonical_manifest_digest(listed: list[FileEntry]) -> None:
    # Given entries in any order / When their digest is streamed in path order
    stream = manifest.Digest()
    for entry in sorted(listed, key=lambda e: e.path):
        stream.add(entry.path, entry.sha256, entry.size, entry.metadata)

    # Then it is the SHA-256 of API.md's canonical JSON, as the registry computes it
    canonical = [
        {"path": e.path, "sha256": e.sha256, "size": e.size, **({"metadata": e.metadata} if e.metadata else {})}
        for e in sorted(listed, key=lambda e: e.path)
    ]
    text = json.dumps({"files": canonical, "remote": []}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert stream.hexdigest() == manifest.digest(listed) == hashlib.sha256(text.encode()).hexdigest()


@given(st.integers(0, 2500), st.integers(0, 1500), st.integers(50, 400))
def test_batches_cut_as_they_come_are_the_batches_cut_at_once(files_n: int, remote_n: int, budget: int) -> None:
    # Given entries of various weights / When cut as a stream and at once / Then the same requests
    weigh = lambda n: n % 7 + 1  # noqa: E731
    listed, remote = list(range(files_n)), list(range(remote_n))
    streamed = list(stream_batches(iter(listed), remote, size=100, budget=budget, weigh=weigh))
    assert streamed == batches(listed, remote, size=100, budget=budget, weigh=weigh)


def test_a_file_noted_sent_is_known_as_sent_until_its_stat_changes(tmp_path: Path) -> None:
    # Given a file noted sent, with no SHA-256 cached for it (it was modified just before)
    from artreg.client.hashcache import Stat

    path = _write(tmp_path / "model.bin", b"weights", age_ns=0)
    cache = HashCache(tmp_path / "cache")
    cache.note_sent([Stat.of(str(path))])
    # Then it counts as sent while its stat is the same, and its SHA-256 is still unknown
    assert cache.was_sent([Stat.of(str(path))]) == [True]
    assert cache.lookup([Stat.of(str(path))]) == [None]
    # And once it is rewritten (another size), it no longer does
    path.write_bytes(b"other weights")
    assert cache.was_sent([Stat.of(str(path))]) == [False]
