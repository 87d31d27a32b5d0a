"""Scrubbing the folder store: `artreg janitor --verify` re-hashes stored blobs, the ones verified
longest ago (or never) first, until its time budget is spent, so that each run goes on where the last
stopped and every blob is read again in turn. A blob whose bytes no longer have its SHA-256 (a disk
error, an edit by hand) is quarantined: no download serves it any more, and the next log of that
content is told to upload it, which repairs it. When each blob was last verified is kept in
`<root>/.verified.sqlite`, by copy (inode), so that a copy installed since is verified as new.

A blob's bytes are checked when it is installed; this catches what happens to them afterwards.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from artreg.local.blobs import FolderBlobStore
from artreg.model.errors import NotFound
from artreg.registry.records import StoredBlob

_CHUNK = 1024**2
STALE_TEMPORARY = timedelta(days=1)  # a temporary file untouched this long belongs to no live upload


@dataclass(frozen=True)
class ScrubSweep:
    checked: int = 0  # blobs re-hashed by this run
    checked_bytes: int = 0
    quarantined: int = 0  # of those, found corrupt and moved out of their address
    left: int = 0  # blobs the budget did not reach: first in line next run


def scrub(blobs: FolderBlobStore, budget: timedelta, *, timer: Callable[[], float] = time.monotonic) -> ScrubSweep:
    """Re-hashes blobs, least recently verified first, until `budget` is spent (a blob begun is
    finished). The order is: never verified, then by the time of their last verification."""
    deadline = timer() + budget.total_seconds()
    with _Record(blobs) as record:
        queue = sorted(
            ((project, blob) for project in blobs.projects() for blob in blobs.unlisted_blobs(project, ())),
            key=lambda item: record.verified_at(item[0], item[1]),
        )
        checked = checked_bytes = quarantined = 0
        for position, (project, blob) in enumerate(queue):
            if timer() >= deadline:
                return ScrubSweep(checked, checked_bytes, quarantined, left=len(queue) - position)
            digest = _digest(blobs, project, blob)
            if digest is None:
                continue  # reclaimed or replaced since the listing
            checked += 1
            checked_bytes += blob.size
            if digest == blob.sha256:
                record.verified(project, blob, blobs.clock.now().timestamp())
            elif blobs.quarantine(project, blob.sha256, blob.generation):
                quarantined += 1
        return ScrubSweep(checked, checked_bytes, quarantined)


def _digest(blobs: FolderBlobStore, project: str, blob: StoredBlob) -> str | None:
    """The SHA-256 of that very copy of the blob; None when it is no longer at its address."""
    try:
        with blobs.open_blob(project, blob.sha256) as file:
            if str(os.fstat(file.fileno()).st_ino) != blob.generation:
                return None
            digest = hashlib.sha256()
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
            return digest.hexdigest()
    except NotFound:
        return None


class _Record:
    """When each copy of a blob was last verified, in a SQLite file beside the blobs."""

    def __init__(self, blobs: FolderBlobStore) -> None:
        self.db = sqlite3.connect(blobs.root / ".verified.sqlite", isolation_level=None)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS verified"
            " (project TEXT, sha256 TEXT, generation TEXT, at REAL, PRIMARY KEY (project, sha256))"
        )
        rows = self.db.execute("SELECT project, sha256, generation, at FROM verified").fetchall()
        self.known = {(p, s): (g, at) for p, s, g, at in rows}

    def __enter__(self) -> _Record:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def verified_at(self, project: str, blob: StoredBlob) -> float:
        generation, at = self.known.get((project, blob.sha256), ("", 0.0))
        return float(at) if generation == blob.generation else 0.0

    def verified(self, project: str, blob: StoredBlob, at: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO verified (project, sha256, generation, at) VALUES (?, ?, ?, ?)",
            (project, blob.sha256, blob.generation, at),
        )
