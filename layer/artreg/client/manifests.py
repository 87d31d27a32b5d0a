"""The manifest cache: the manifests (path, SHA-256, size, a digest of the file's metadata) of versions
this client logged, kept beside the hash cache, so that logging a version that differs from `latest`
by a few files sends only those (an upload from a base, API.md) without reading the base back.

A manifest is kept under the registry's URL, the project, the name, the version and its digest, and
only once its digest, computed here over the rows kept, is the one the registry answered: a row
that is not what the registry holds cannot be kept, so an upload from it is never wrong, only
refused (the registry checks the base's digest). At most `KEEP` manifests are kept, the least
recently used dropped. A version with remote entries is not kept (their pins are the registry's).

Kept in SQLite (WAL) at `<cache_dir>/manifests.sqlite`; a cache that cannot be opened or written
is skipped, never failing a log: the upload is then a full one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from artreg.client.files import HashedFile
from artreg.client.hashcache import CacheFile
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
    meta TEXT NOT NULL, source TEXT, metadata TEXT, PRIMARY KEY (manifest, path)
) WITHOUT ROWID;
"""


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
    """A walk of a version's files compared with a kept manifest as it goes (no row written): their
    digest and count, and the changes from the base (None without a base, or over the limit)."""

    digest: str
    count: int
    changes: Changes | None


def compare(cache: ManifestCache, base: str | None, files: Iterable[HashedFile], limit: int) -> Walked | None:
    """Walks `files` (in path order) beside the rows of the kept manifest `base`, a page at a time;
    None once more than `limit` files changed or went: then the version differs from the base by
    more than an upload from it would save (and its digest is not the base's)."""
    digest = Digest()
    count = 0
    changed: list[HashedFile] = []
    removed: list[str] = []
    rows = cache.rows(base) if base is not None else iter(())
    row = next(rows, None)
    for file in files:
        digest.add(file.path, file.sha256, file.size, file.metadata)
        count += 1
        if base is None:
            continue
        while row is not None and row[0] < file.path:
            removed.append(row[0])
            row = next(rows, None)
        if row is not None and row[0] == file.path:
            if row[1:] != (file.sha256, file.size, meta_digest(file.metadata)):
                changed.append(file)
            row = next(rows, None)
        else:
            changed.append(file)
        if len(changed) > limit or len(removed) > limit:
            return None
    if base is None:
        return Walked(digest.hexdigest(), count, None)
    while row is not None:
        removed.append(row[0])
        row = next(rows, None)
    if len(removed) > limit:
        return None
    return Walked(digest.hexdigest(), count, Changes(changed, removed))


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
        self._rows: list[tuple[str, str, str, int, str, str, str | None]] = []
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
            self.db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._rows.clear()

    def close(self) -> str:
        """Ends the writing; the manifest's digest."""
        self._flush()
        self.digest = self._digest.hexdigest()
        return self.digest

    def files(self) -> Iterator[HashedFile]:
        """The staged files in path order, a page of rows at a time."""
        after = ""
        while True:
            with self.cache._lock:
                rows = self.db.execute(
                    "SELECT path, sha256, size, source, metadata FROM entries WHERE manifest = ? AND path > ? "
                    "ORDER BY path LIMIT ?",
                    (self.id, after, _WRITE),
                ).fetchall()
            yield from (_hashed(*row) for row in rows)
            if len(rows) < _WRITE:
                return
            after = rows[-1][0]

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

    name = "manifests.sqlite"
    schema = _SCHEMA
    autocommit = False
    without = "logging in full"

    def _prepare(self, db: sqlite3.Connection) -> None:
        # rows of a manifest not kept (yet) that a killed log left behind: those of a live process are
        # another log's, being written or read on this machine now, and are left to it
        unkept = db.execute("SELECT DISTINCT manifest FROM entries WHERE manifest NOT IN (SELECT id FROM manifests)")
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

    def rows(self, manifest: str) -> Iterator[tuple[str, str, int, str]]:
        """The kept manifest's (path, SHA-256, size, metadata digest) in path order, a page at a time."""
        after = ""
        while True:
            with self._lock:
                assert self._db is not None
                page = self._db.execute(
                    "SELECT path, sha256, size, meta FROM entries WHERE manifest = ? AND path > ?"
                    " ORDER BY path LIMIT ?",
                    (manifest, after, _PAGE),
                ).fetchall()
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1][0]

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
                        "INSERT INTO entries SELECT ?, path, sha256, size, meta, source, metadata FROM entries"
                        " WHERE manifest = ?",
                        (new, base),
                    )
                    gone = ((new, path) for path in changes.removed)
                    db.executemany("DELETE FROM entries WHERE manifest = ? AND path = ?", gone)
                    rows = (_row(new, file) for file in changes.files)
                    db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
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


def _row(manifest: str, file: HashedFile) -> tuple[str, str, str, int, str, str, str | None]:
    metadata = json.dumps(dict(file.metadata)) if file.metadata else None
    return (manifest, file.path, file.sha256, file.size, meta_digest(file.metadata), file.source, metadata)


def _hashed(path: str, sha256: str, size: int, source: str, metadata: str | None) -> HashedFile:
    return HashedFile(
        path=path, source=source, sha256=sha256, size=size, metadata=json.loads(metadata) if metadata else None
    )


def _next_use(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COALESCE(MAX(used_at), 0) + 1 FROM manifests").fetchone()[0])
