"""A dataset re-logged with `if_changed` beside the manifest the SDK's cache keeps of `latest`, whose
rows hold the stat each file had when its SHA-256 was known: a file that still has that stat is not
read, nor looked up in the hash cache; any other is hashed as the hash cache rules (read unless it
knows the file's stat), and a file modified too close to its reading never has its stat kept.
Against `artreg server`, every request and every file read counted."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from artreg.client import Artifact, Registry
from tests.e2e.counting import CountingPool, counted_registry
from tests.support.server import RunningServer

N = 1200  # more than one request of files: the manifest cache keeps the version
HOUR_NS = 3600 * 10**9


def shards(root: Path, *, age_ns: int = HOUR_NS) -> Path:
    """N files whose mtime is `age_ns` in the past (negative: ahead of the clock)."""
    for i in range(N):
        path = root / f"{i // 500}" / f"{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"shard {i}")
        mtime = time.time_ns() - age_ns
        os.utime(path, ns=(mtime, mtime))
    return root


def dataset(root: Path) -> Artifact:
    return Artifact("shards", type="dataset").add(root)


@pytest.fixture
def clients() -> Iterator[list[tuple[Registry, CountingPool]]]:
    """The clients a test made on one cache folder, closed at its end."""
    made: list[tuple[Registry, CountingPool]] = []
    yield made
    for reg, _ in made:
        reg.close()


def client(
    server: RunningServer, cache: Path, made: list[tuple[Registry, CountingPool]]
) -> tuple[Registry, CountingPool]:
    made.append(counted_registry(server.url, cache))
    return made[-1]


def without_hash_cache(cache: Path, made: list[tuple[Registry, CountingPool]]) -> None:
    """The hash cache lost (its files deleted, its clients closed): only the manifest cache knows the files."""
    for reg, _ in made:
        reg.close()
    for path in cache.glob("hashes.sqlite*"):
        path.unlink()


def test_an_unchanged_dataset_is_answered_from_the_kept_manifest_reading_no_file(
    server: RunningServer, tmp_path: Path, reads: list[str], clients: list[tuple[Registry, CountingPool]]
) -> None:
    # Given a dataset of files last modified an hour ago, logged by this client, whose hash cache is then lost
    root = shards(tmp_path / "shards")
    cache = tmp_path / "cache"
    reg, _ = client(server, cache, clients)
    first = reg.log_artifact(dataset(root))
    without_hash_cache(cache, clients)
    reads.clear()
    # When it is logged again unchanged with if_changed
    reg, pool = client(server, cache, clients)
    again = reg.log_artifact(dataset(root), if_changed=True)
    # Then latest is the answer, from one GET, and no file was read: each file's kept row holds its stat
    assert (again.version, again.created, again.digest) == (first.version, False, first.digest)
    assert [(s.method, s.path.rsplit("/", 1)[-1]) for s in pool.sent] == [("GET", "latest")]
    assert reads == []


def test_a_file_whose_stat_no_longer_matches_its_kept_row_is_read(
    server: RunningServer, tmp_path: Path, reads: list[str], clients: list[tuple[Registry, CountingPool]]
) -> None:
    # Given a dataset of files last modified an hour ago, logged by this client, whose hash cache is then lost
    root = shards(tmp_path / "shards")
    cache = tmp_path / "cache"
    reg, _ = client(server, cache, clients)
    reg.log_artifact(dataset(root))
    without_hash_cache(cache, clients)
    # And one file rewritten in place with the same size and its mtime put back (only its ctime shows it),
    # one grown, and one replaced by a copy of itself (same bytes and times, another inode)
    rewritten, grown, copied = root / "0" / "0007.txt", root / "1" / "0600.txt", root / "2" / "1100.txt"
    before = os.stat(rewritten)
    rewritten.write_text("shard X")
    os.utime(rewritten, ns=(before.st_atime_ns, before.st_mtime_ns))
    grown.write_text("shard 600, longer")
    os.utime(grown, ns=(before.st_atime_ns, before.st_mtime_ns))
    stat = os.stat(copied)
    (root / "copy.tmp").write_bytes(copied.read_bytes())
    os.utime(root / "copy.tmp", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(root / "copy.tmp", copied)
    reads.clear()
    # When it is logged again with if_changed
    reg, pool = client(server, cache, clients)
    second = reg.log_artifact(dataset(root), if_changed=True)
    # Then those three files alone were read, and the two whose bytes changed made a new version, sent alone
    assert sorted(reads) == sorted(map(str, [rewritten, grown, copied]))
    assert (second.version, second.created) == ("2.0.0", True)
    assert pool.blob_bytes == len("shard X") + len("shard 600, longer")
    sizes = {f.path: f.size for f in second.iter_files()}
    assert (sizes["0/0007.txt"], sizes["1/0600.txt"], len(sizes)) == (len("shard X"), len("shard 600, longer"), N)
    # And a re-log then reads none of them (the new version's kept rows, or the hash cache, know each)
    reads.clear()
    third = reg.log_artifact(dataset(root), if_changed=True)
    assert (third.version, third.created, reads) == ("2.0.0", False, [])


def test_files_touched_without_a_change_are_read_once_then_known_by_their_new_stat(
    server: RunningServer, tmp_path: Path, reads: list[str], clients: list[tuple[Registry, CountingPool]]
) -> None:
    # Given a dataset of files last modified an hour ago, logged by this client
    root = shards(tmp_path / "shards")
    cache = tmp_path / "cache"
    reg, _ = client(server, cache, clients)
    first = reg.log_artifact(dataset(root))
    # And every file touched (its mtime now a minute later, its bytes the same), and the hash cache lost
    for path in root.rglob("*.txt"):
        mtime = os.stat(path).st_mtime_ns + 60 * 10**9
        os.utime(path, ns=(mtime, mtime))
    without_hash_cache(cache, clients)
    reads.clear()
    # When it is logged again with if_changed
    reg, _ = client(server, cache, clients)
    again = reg.log_artifact(dataset(root), if_changed=True)
    # Then every file was read, and latest is the answer
    assert len(reads) == N
    assert (again.version, again.created) == (first.version, False)
    # And when it is logged once more, the hash cache lost again, no file is read: the kept rows hold
    # the files' new stats
    without_hash_cache(cache, clients)
    reads.clear()
    reg, _ = client(server, cache, clients)
    third = reg.log_artifact(dataset(root), if_changed=True)
    assert (third.version, third.created, reads) == (first.version, False, [])


def test_a_file_modified_too_close_to_its_reading_has_no_stat_kept_and_is_read_again(
    server: RunningServer, tmp_path: Path, reads: list[str], clients: list[tuple[Registry, CountingPool]]
) -> None:
    # Given a dataset whose files' mtime is not 2 s before their reading (here an hour ahead, as a skewed
    # clock gives), logged by this client
    root = shards(tmp_path / "shards", age_ns=-HOUR_NS)
    reg, _ = client(server, tmp_path / "cache", clients)
    first = reg.log_artifact(dataset(root))
    reads.clear()
    # When it is logged again unchanged with if_changed
    again = reg.log_artifact(dataset(root), if_changed=True)
    # Then every file was read again (the manifest cache, as the hash cache, does not vouch for them),
    # and latest is the answer
    assert len(reads) == N
    assert (again.version, again.created, again.digest) == (first.version, False, first.digest)


OLDER_SCHEMA = """
CREATE TABLE manifests (
    id TEXT PRIMARY KEY, key TEXT UNIQUE, artifact TEXT NOT NULL, used_at INTEGER NOT NULL, count INTEGER NOT NULL
);
CREATE TABLE entries (
    manifest TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    meta TEXT NOT NULL, source TEXT, metadata TEXT, PRIMARY KEY (manifest, path)
) WITHOUT ROWID;
"""


def test_an_older_sdks_manifest_cache_is_left_to_it(
    server: RunningServer, tmp_path: Path, reads: list[str], clients: list[tuple[Registry, CountingPool]]
) -> None:
    # Given a cache folder where an older SDK keeps its manifest cache (rows without stats)
    cache = tmp_path / "cache"
    cache.mkdir()
    older = cache / "manifests.sqlite"
    with contextlib.closing(sqlite3.connect(older)) as db, db:
        db.executescript(OLDER_SCHEMA)
        db.execute("INSERT INTO manifests VALUES ('m1', 'k1', 'a1', 1, 1)")
        db.execute("INSERT INTO entries VALUES ('m1', 'x.txt', ?, 1, '', '/d/x.txt', NULL)", ("0" * 64,))
    # When this SDK logs a dataset there, then logs it again unchanged with if_changed
    root = shards(tmp_path / "shards")
    reg, _ = client(server, cache, clients)
    first = reg.log_artifact(dataset(root))
    reads.clear()
    again = reg.log_artifact(dataset(root), if_changed=True)
    # Then the re-log is answered from this SDK's own manifest cache, reading no file
    assert (again.version, again.created, reads) == (first.version, False, [])
    # And the older SDK's cache holds what it held, and takes its rows as that SDK writes them
    with contextlib.closing(sqlite3.connect(older)) as db, db:
        assert db.execute("SELECT manifest, path FROM entries").fetchall() == [("m1", "x.txt")]
        db.execute(
            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", ("m1", "y", "1" * 64, 1, "", None, None)
        )
