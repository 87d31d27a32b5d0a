"""The hash cache: the SHA-256 of a local file, remembered by what the file system says of it (its
absolute path, size, mtime, ctime, inode and device, as git's index and DVC's state do), so that
logging files that did not change reads none of them. A file whose stat differs in any of these is
hashed again. It is only ever a shortcut for reading: what is sent is still checked by the blob
store against its SHA-256, so a stale entry fails a PUT, never stores wrong bytes.

What it cannot see: a file rewritten in place with the same size whose mtime and ctime both come
out as before (ctime cannot be set, only the clock), which is why a file is cached only once its
mtime is at least `_RACY_NS` older than the moment it was read (git's "racily clean" files).

It also notes the files a log sent before their SHA-256 was known (`client.staging`), by stat alone:
a hint that their content is likely stored, so that the next log of a file not cached (a racily
clean one) hashes it first and sends none of its bytes if so, instead of sending it all again. A
hint never stands for a SHA-256: with or without it, what is logged is what was hashed.

Kept in SQLite (WAL, one transaction per batch) beside the download cache; a cache that cannot be
opened or written is skipped, never failing a log."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("artreg")
_RACY_NS = 2_000_000_000  # a file modified this close to its reading may change again within the same mtime
_LOOKUP = 500  # paths per query: under SQLite's oldest limit of 999 variables
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL, dev INTEGER NOT NULL, sha256 TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sent (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    ino INTEGER NOT NULL, dev INTEGER NOT NULL
) WITHOUT ROWID
"""


class Stat(NamedTuple):
    """What the file system says of a file, all of which a cache hit must match."""

    path: str  # absolute
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, path: str) -> Stat:
        info = os.stat(path)
        # tuple.__new__ as the class's own __new__ does, without its call: a stat is taken for every file logged
        return tuple.__new__(cls, (path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev))


def trusted(stat: Stat, read_at_ns: int) -> bool:
    """Whether the SHA-256 of a file read at `read_at_ns` (time.time_ns() before reading) may stand for
    it while its stat is `stat`: not if it was modified so close to that moment that it may change
    again within the same mtime (see the module's note). Every cache of SHA-256 by stat keeps this rule."""
    return stat.mtime_ns < read_at_ns - _RACY_NS


class CacheFile:
    """A cache's SQLite file under the cache folder, beside the others (the hash cache, the manifest
    cache): one connection, one lock. WAL, so that readers never wait on a writer, and NORMAL sync, as
    a cache may lose its last writes to a crash (it is rebuilt by hashing again, or by a full upload).
    A file that cannot be opened is skipped (`_connect` answers None): the work goes on without it."""

    name = ""  # the file's name
    schema = ""
    autocommit: bool = True
    without = ""  # what the work does without it, for the log

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = Path(root).expanduser() / self.name
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.path,
                    timeout=10,
                    check_same_thread=False,
                    isolation_level=None if self.autocommit else "DEFERRED",
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(self.schema)
                self._prepare(db)
                self._db = db
            except (sqlite3.Error, OSError) as error:
                log.debug("%s unusable, %s: %s", self.path, self.without, error)
                self._broken = True
        return self._db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """What a cache does once its file is open."""

    def _write(self, statement: str, rows: Sequence[tuple[object, ...]]) -> None:
        """`statement` for each of `rows`, in one transaction; skipped (logged) if the cache fails."""
        if not rows:
            return
        with self._lock:
            db = self._connect()
            if db is None:
                return
            try:
                with db:
                    if self.autocommit:  # (no transaction is begun for it otherwise)
                        db.execute("BEGIN")
                    db.executemany(statement, rows)
            except sqlite3.Error as error:
                log.debug("%s write failed: %s", self.name, error)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class HashCache(CacheFile):
    """SHA-256 by file stat at `<root>/hashes.sqlite`. Thread-safe (one connection, one lock)."""

    name = "hashes.sqlite"
    schema = _SCHEMA
    without = "hashing everything"

    def lookup(self, stats: Sequence[Stat]) -> list[str | None]:
        """The cached SHA-256 of each file, or None where the stat does not match the entry."""
        found = self._rows("SELECT path, size, mtime_ns, ctime_ns, ino, dev, sha256 FROM hashes", stats)
        # (path, size, mtime_ns, ctime_ns, ino, dev, sha256)
        return [
            str(row[6]) if (row := found.get(stat.path)) is not None and row[:6] == stat else None for stat in stats
        ]

    def was_sent(self, stats: Sequence[Stat]) -> list[bool]:
        """Whether each file was noted sent (`note_sent`) with the stat it has now."""
        found = self._rows("SELECT path, size, mtime_ns, ctime_ns, ino, dev FROM sent", stats)
        return [found.get(stat.path) == stat for stat in stats]

    def note_sent(self, stats: Sequence[Stat]) -> None:
        """Notes that these files' bytes were sent and stored (their SHA-256 is not kept here)."""
        self._write("INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?, ?)", [tuple(stat) for stat in stats])

    def _rows(self, select: str, stats: Sequence[Stat]) -> dict[str, tuple[object, ...]]:
        """The rows of `select` (whose first column is the path) of these files' paths, by path."""
        found: dict[str, tuple[object, ...]] = {}
        with self._lock:
            db = self._connect()
            if db is None:
                return found
            try:
                for start in range(0, len(stats), _LOOKUP):
                    chunk = [s.path for s in stats[start : start + _LOOKUP]]
                    found.update((row[0], row) for row in _select(db, select, chunk))
            except sqlite3.Error as error:
                log.debug("hash cache lookup failed: %s", error)
                return {}
        return found

    def store(self, entries: Sequence[tuple[Stat, str]], read_at_ns: int) -> None:
        """Remembers the SHA-256 of files read at `read_at_ns` (time.time_ns() before reading), in one
        transaction; a file modified too close to that moment is left out (see the module's note)."""
        self._write(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*stat, sha256) for stat, sha256 in entries if trusted(stat, read_at_ns)],
        )


def _select(db: sqlite3.Connection, select: str, paths: list[str]) -> list[Any]:
    """The rows of `select` whose path is one of `paths`. The files of a folder are neighbours in the
    table (its key is the path), so their range is read first: one walk of the index, about twice as
    fast as binding every path; where the range holds many other rows, the paths are bound instead."""
    most = 2 * len(paths)
    rows = db.execute(f"{select} WHERE path BETWEEN ? AND ? LIMIT ?", (min(paths), max(paths), most)).fetchall()
    if len(rows) < most:
        return rows
    marks = ",".join("?" * len(paths))  # placeholders only: the paths are bound
    return db.execute(f"{select} WHERE path IN ({marks})", paths).fetchall()
