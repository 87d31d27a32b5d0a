"""The manifest cache: the manifests (path, SHA-256, size, a digest of the file's metadata) of versions
this client logged, kept beside the hash cache, so that logging a version that differs from `latest`
by a few files sends only those (an upload from a base, API.md) without reading the base back.

A manifest is kept under the registry's URL, the project, the name, the version and its digest, and
only once its digest, computed here over the rows kept, is the one the registry answered: a row
that is not what the registry holds cannot be kept, so an upload from it is never wrong, only
refused (the registry checks the base's digest). At most `KEEP` manifests are kept, the least
recently used dropped. A version with remote entries is not kept (their pins are the registry's).

A row also keeps the stat its file had when its SHA-256 was known (as `hashcache.Stat` holds it),
where the hash cache's rule (`hashcache.trusted`) lets that stat stand for the SHA-256, so that a
walk compared with a kept manifest reads nothing of, and asks the hash cache nothing about, a file
that still has that stat; any other file is hashed as usual.

Kept in SQLite (WAL) at `<cache_dir>/manifests-2.sqlite`; a cache that cannot be opened or written
is skipped, never failing a log: the upload is then a full one."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from artreg.client.files import HashedFile, Hasher, LocalFile
from artreg.client.hashcache import CacheFile, Stat
from artreg.model.manifest import Digest
from artreg.model.wire import MAX_FILES_PER_REQUEST

if TYPE_CHECKING:
    from artreg.client.registry import Registry

log = logging.getLogger("artreg")
KEEP = 4  # manifests kept: a 100,000-file one is about 15 MB
_WRITE = 1000  # rows a statement
_PAGE = 5000  # rows a read of a kept manifest
_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    id TEXT PRIMARY KEY, key TEXT UNIQUE, artifact TEXT NOT NULL, used_at INTEGER NOT NULL, count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    manifest TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    meta TEXT NOT NULL, source TEXT, metadata TEXT,
    mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER, dev INTEGER, PRIMARY KEY (manifest, path)
) WITHOUT ROWID;
"""
# the manifests with rows but no record: one seek of the key per manifest (a DISTINCT would read every row,
# ~15 ms a 100,000-file manifest, at every opening)
_UNKEPT = """
WITH RECURSIVE ids(id) AS (
    SELECT MIN(manifest) FROM entries
    UNION ALL SELECT (SELECT MIN(manifest) FROM entries WHERE manifest > ids.id) FROM ids WHERE ids.id IS NOT NULL
)
SELECT id FROM ids WHERE id IS NOT NULL AND id NOT IN (SELECT id FROM manifests)
"""
_INSERT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# a kept row as `compare` reads it: (path, sha256, size, meta, then the stat of its source as
# `hashcache.Stat` holds it: source, size, mtime_ns, ctime_ns, ino, dev), the stat NULL where none stands
# for the SHA-256
Row = tuple[str, str, int, str, str | None, int, int | None, int | None, int | None, int | None]
_ROW = "path, sha256, size, meta, source, size, mtime_ns, ctime_ns, ino, dev"


def meta_digest(metadata: Mapping[str, Any] | None) -> str:
    """What the cache keeps of a file's metadata: enough to tell whether it changed."""
    if not metadata:
        return ""
    return hashlib.sha256(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def key_of(url: str, project: str, name: str, version: str, digest: str) -> str:
    return json.dumps([url, project, name, version, digest])


def artifact_of(url: str, project: str, name: str) -> str:
    return json.dumps([url, project, name])


@dataclass(frozen=True)
class Changes:
    """How a staged manifest differs from a kept one: the files to send (with where to read them)
    and the paths to remove."""

    files: list[HashedFile]
    removed: list[str]


@dataclass(frozen=True)
class Walked:
    """A walk of a version's files compared with a kept manifest as it goes (no file's row written): their
    digest (None where they differ from the base: not computed, as it cannot be the base's), their
    count, and the changes from the base (None without a base, or over the limit)."""

    digest: str | None
    count: int
    changes: Changes | None


def compare(
    cache: ManifestCache, base: tuple[str, str] | None, files: Iterable[LocalFile], hasher: Hasher, limit: int
) -> Walked | None:
    """Walks `files` (in path order) beside the rows of the kept manifest `base` (its id and digest), a
    page at a time: a file whose row holds the stat it has now (and its metadata) is the row's, read
    nothing of; the others go through `hasher` (the hash cache, else read). None once more than `limit`
    files changed or went: then the version differs from the base by more than an upload from it would
    save. The digest is the base's when nothing changed (`copy_from` then `digest` give it otherwise).
    A file whose bytes are its row's but whose stat is not (touched, copied back, moved with its folder)
    has the stat it has now written in its row (`restat`), so that the next walk reads nothing of it
    either."""
    if base is None:
        digest = Digest()
        count = 0
        for chunk in _blocks(files):
            for done in hasher.hash(chunk):
                digest.add(done.path, done.sha256, done.size, done.metadata)
            count += len(chunk)
        return Walked(digest.hexdigest(), count, None)
    manifest, base_digest = base
    count = 0
    changed: list[HashedFile] = []
    removed: list[str] = []
    rows = cache.rows(manifest)
    row = next(rows, None)
    for chunk in _blocks(files):
        count += len(chunk)
        todo: list[tuple[LocalFile, Stat, Row | None]] = []  # the files to hash, with their kept row
        for file in chunk:
            stat = Stat.of(file.source)
            while row is not None and row[0] < file.path:
                removed.append(row[0])
                row = next(rows, None)
            if row is None or row[0] != file.path:
                todo.append((file, stat, None))
                continue
            kept, row = row, next(rows, None)
            if kept[4:] != stat or kept[3] != (meta_digest(file.metadata) if file.metadata else ""):
                todo.append((file, stat, kept))
        if todo:
            hashed = hasher.hash([file for file, _, _ in todo], [stat for _, stat, _ in todo])
            same: list[HashedFile] = []  # the files whose row holds their bytes but not their stat now
            for done, (_, _, before) in zip(hashed, todo, strict=True):
                if before is None or before[1:4] != (done.sha256, done.size, meta_digest(done.metadata)):
                    changed.append(done)
                else:
                    same.append(done)
            cache.restat(manifest, same)
        if len(changed) > limit or len(removed) > limit:
            return None
    while row is not None:
        removed.append(row[0])
        row = next(rows, None)
        if len(removed) > limit:
            return None
    return Walked(None if changed or removed else base_digest, count, Changes(changed, removed))


def _blocks(files: Iterable[LocalFile]) -> Iterator[list[LocalFile]]:
    pending = iter(files)
    while chunk := list(itertools.islice(pending, MAX_FILES_PER_REQUEST)):
        yield chunk


def _unkept_id(kind: str) -> str:
    """The id of a manifest written before it is kept: it names the process writing it, so that
    another process opening the cache removes it only once that one is gone (`_prepare`)."""
    return f"{kind}-{os.getpid()}-{uuid.uuid4().hex}"


def _writer_alive(manifest: str) -> bool:
    """Whether the process named in an unkept manifest's id is running (an id without one: no). On
    Windows, where os.kill would end the process, any named process counts as running: a killed log's
    rows stay there, unused, rather than a running log's going."""
    try:
        pid = int(manifest.split("-")[1])
        if os.name == "nt":
            return True
        os.kill(pid, 0)  # signal 0: only whether the process exists
    except (IndexError, ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


class Staged:
    """A manifest being written as its files are hashed, then kept under the version it became, or
    dropped. Its digest is computed as it is written."""

    def __init__(self, cache: ManifestCache, db: sqlite3.Connection) -> None:
        self.cache = cache
        self.db = db
        self.id = _unkept_id("staged")
        self.count = 0
        self._digest = Digest()
        self._rows: list[tuple[object, ...]] = []
        self.digest = ""
        self.kept = False

    def add(self, file: HashedFile) -> None:
        self._digest.add(file.path, file.sha256, file.size, file.metadata)
        self._rows.append(_row(self.id, file))
        self.count += 1
        if len(self._rows) >= _WRITE:
            self._flush()

    def _flush(self) -> None:
        with self.cache._lock, self.db:
            self.db.executemany(_INSERT, self._rows)
        self._rows.clear()

    def close(self) -> str:
        """Ends the writing; the manifest's digest."""
        self._flush()
        self.digest = self._digest.hexdigest()
        return self.digest

    def keep(self, key: str, artifact: str) -> None:
        """Keeps this manifest as the version `key` of `artifact` (whose digest the caller checked is
        this one's)."""
        with self.cache._lock, self.db:
            self.db.execute("DELETE FROM entries WHERE manifest IN (SELECT id FROM manifests WHERE key = ?)", (key,))
            self.db.execute("DELETE FROM manifests WHERE key = ?", (key,))
            self.db.execute(
                "INSERT INTO manifests VALUES (?, ?, ?, ?, ?)", (self.id, key, artifact, _next_use(self.db), self.count)
            )
            self.cache._trim(self.db)
        self.kept = True

    def drop(self) -> None:
        if self.kept:
            return
        with self.cache._lock, self.db:
            self.db.execute("DELETE FROM entries WHERE manifest = ?", (self.id,))


class ManifestCache(CacheFile):
    """Manifests of versions by (registry URL, project, name, version, digest). Thread-safe."""

    # a file of its own since its rows hold stats: an older SDK, which writes rows without them, keeps
    # using `manifests.sqlite`, read by no newer one
    name = "manifests-2.sqlite"
    schema = _SCHEMA
    autocommit = False
    without = "logging in full"

    def _prepare(self, db: sqlite3.Connection) -> None:
        # rows of a manifest not kept (yet) that a killed log left behind: those of a live process are
        # another log's, being written or read on this machine now, and are left to it
        unkept = db.execute(_UNKEPT)
        for (manifest,) in [row for row in unkept if not _writer_alive(row[0])]:
            db.execute("DELETE FROM entries WHERE manifest = ?", (manifest,))
        db.commit()

    def _trim(self, db: sqlite3.Connection) -> None:
        old = [
            row[0] for row in db.execute("SELECT id FROM manifests ORDER BY used_at DESC LIMIT -1 OFFSET ?", (KEEP,))
        ]
        for manifest in old:
            db.execute("DELETE FROM entries WHERE manifest = ?", (manifest,))
            db.execute("DELETE FROM manifests WHERE id = ?", (manifest,))

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staged | None]:
        """A manifest to write (None if the cache is unusable); dropped on leaving unless kept."""
        with self._lock:
            db = self._connect()
        if db is None:
            yield None
            return
        staged = Staged(self, db)
        try:
            yield staged
        except sqlite3.Error as error:
            log.debug("manifest cache write failed: %s", error)
            raise
        finally:
            with contextlib.suppress(sqlite3.Error):
                staged.drop()

    def kept(self, key: str) -> str | None:
        """The id of the kept manifest `key`, marked used (the last to be dropped); None if not kept."""
        with self._lock:
            db = self._connect()
            if db is None:
                return None
            row = db.execute("SELECT id FROM manifests WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            with db:
                db.execute("UPDATE manifests SET used_at = ? WHERE id = ?", (_next_use(db), row[0]))
            return str(row[0])

    def rows(self, manifest: str) -> Iterator[Row]:
        """The kept manifest's rows as `compare` reads them (`Row`), in path order, a page at a time."""
        return self._read(manifest, _ROW)

    def digest(self, manifest: str) -> str | None:
        """The digest of a manifest's rows (as the registry computes it over the same files), read a page
        at a time; None if the cache failed."""
        digest = Digest()
        try:
            for path, sha256, size, metadata in self._read(manifest, "path, sha256, size, metadata"):
                digest.add(path, sha256, size, json.loads(metadata) if metadata else None)
        except sqlite3.Error as error:
            log.debug("manifest cache read failed: %s", error)
            return None
        return digest.hexdigest()

    def _read(self, manifest: str, columns: str) -> Iterator[Any]:
        """`columns` (the first: path) of the manifest's rows in path order, a page at a time."""
        return itertools.chain.from_iterable(self._pages(manifest, columns))

    def _pages(self, manifest: str, columns: str) -> Iterator[list[Any]]:
        after = ""
        while True:
            with self._lock:
                assert self._db is not None
                page = self._db.execute(
                    f"SELECT {columns} FROM entries WHERE manifest = ? AND path > ? ORDER BY path LIMIT ?",  # noqa: S608 (this module's constants)
                    (manifest, after, _PAGE),
                ).fetchall()
            yield page
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def restat(self, manifest: str, files: Iterable[HashedFile]) -> None:
        """Writes in the kept manifest's rows the stat (and source) these files have now, where it may
        stand for their SHA-256, for the rows that hold their SHA-256 and size: the manifest, and so its
        digest, is the same."""
        rows = [(*_stat_columns(file), manifest, file.path, file.sha256, file.size) for file in files if file.stat]
        self._write(
            "UPDATE entries SET source = ?, mtime_ns = ?, ctime_ns = ?, ino = ?, dev = ?"
            " WHERE manifest = ? AND path = ? AND sha256 = ? AND size = ?",
            rows,
        )

    def copy_from(self, base: str, changes: Changes) -> str | None:
        """The manifest `base` with `changes` applied, copied in SQLite in one transaction (its rows
        copied, the changed ones written from here) under a new id that nothing keeps yet (`keep_copy`
        keeps it, `drop_copy` drops it; a later opening drops it if neither came). Its cost overlaps
        the upload from `base`: the caller runs it on a thread meanwhile. None if the cache failed."""
        new = _unkept_id("kept")
        with self._lock:
            db = self._connect()
            if db is None:
                return None
            try:
                with db:
                    db.execute(
                        "INSERT INTO entries SELECT ?, path, sha256, size, meta, source, metadata, mtime_ns,"
                        " ctime_ns, ino, dev FROM entries WHERE manifest = ?",
                        (new, base),
                    )
                    gone = ((new, path) for path in changes.removed)
                    db.executemany("DELETE FROM entries WHERE manifest = ? AND path = ?", gone)
                    rows = (_row(new, file) for file in changes.files)
                    db.executemany(_INSERT, rows)
            except sqlite3.Error as error:
                log.debug("manifest cache write failed: %s", error)
                return None
        return new

    def keep_copy(self, copy: str, count: int, key: str, artifact: str) -> None:
        """Keeps a `copy_from` as the version `key` of `artifact` (whose digest the caller checked is
        the walk's, which is these rows')."""
        with self._lock:
            db = self._connect()
            if db is None:
                return
            with db:
                db.execute("DELETE FROM entries WHERE manifest IN (SELECT id FROM manifests WHERE key = ?)", (key,))
                db.execute("DELETE FROM manifests WHERE key = ?", (key,))
                db.execute("INSERT INTO manifests VALUES (?, ?, ?, ?, ?)", (copy, key, artifact, _next_use(db), count))
                self._trim(db)

    def drop_copy(self, copy: str) -> None:
        with self._lock:
            db = self._connect()
            if db is None:
                return
            with contextlib.suppress(sqlite3.Error), db:
                db.execute("DELETE FROM entries WHERE manifest = ?", (copy,))

    def knows_artifact(self, artifact: str) -> bool:
        """Whether a manifest of some version of `artifact` is kept: else no base can be known."""
        with self._lock:
            db = self._connect()
            if db is None:
                return False
            return db.execute("SELECT 1 FROM manifests WHERE artifact = ?", (artifact,)).fetchone() is not None

    def keys(self) -> list[str]:
        with self._lock:
            db = self._connect()
            return [] if db is None else [k for (k,) in db.execute("SELECT key FROM manifests ORDER BY used_at")]


def remember(reg: Registry, staged: Staged, name: str, version: str, digest: str) -> None:
    """Keeps a staged manifest of over one request of files as `name@version` if its digest is the
    registry's (`digest`): a version with files' metadata, which the rows do not hold, never is."""
    if staged.count > MAX_FILES_PER_REQUEST and staged.close() == digest:
        staged.keep(key_of(reg.url, reg.project, name, version, digest), artifact_of(reg.url, reg.project, name))


def _row(manifest: str, file: HashedFile) -> tuple[object, ...]:
    metadata = json.dumps(dict(file.metadata)) if file.metadata else None
    source, *known = _stat_columns(file)
    return (manifest, file.path, file.sha256, file.size, meta_digest(file.metadata), source, metadata, *known)


def _stat_columns(file: HashedFile) -> tuple[str, int | None, int | None, int | None, int | None]:
    """A row's source and stat columns: the stat only where it is the source's, of the size read (a hash
    cache entry's always is)."""
    stat = file.stat if file.stat is not None and file.stat[:2] == (file.source, file.size) else None
    if stat is None:
        return file.source, None, None, None, None
    return file.source, stat.mtime_ns, stat.ctime_ns, stat.ino, stat.dev


def _next_use(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COALESCE(MAX(used_at), 0) + 1 FROM manifests").fetchone()[0])
