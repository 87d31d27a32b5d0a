"""The folder store's scrubbing schedule: the least recently verified blobs first, within a budget, so
that runs too short to read everything still read every blob in turn; a copy installed since a
corrupt one was read is never quarantined."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from artreg.local.blobs import FolderBlobStore
from artreg.local.scrub import scrub

P = "vision"
BLOBS = [b"one", b"two", b"three"]


class Ticks:
    """A clock and a timer that move one second each time they are read."""

    def __init__(self) -> None:
        self.ticks = count()

    def __call__(self) -> float:
        return float(next(self.ticks))

    def now(self) -> datetime:
        return datetime(2026, 11, 22, tzinfo=UTC) + timedelta(seconds=next(self.ticks))


def _store(tmp_path: Path) -> FolderBlobStore:
    store = FolderBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:0", clock=Ticks())
    for data in BLOBS:
        store.accept_put(P, hashlib.sha256(data).hexdigest(), len(data), io.BytesIO(data), len(data))
    return store


def test_short_runs_verify_every_blob_in_turn(tmp_path: Path) -> None:
    # Given three blobs, and runs whose budget covers one blob each
    store = _store(tmp_path)
    one_blob = timedelta(seconds=1.5)

    # When it runs three times
    sweeps = [scrub(store, one_blob, timer=Ticks()) for _ in range(3)]

    # Then each run verified one blob and left the others, and together they verified all three
    assert [(s.checked, s.left) for s in sweeps] == [(1, 2), (1, 2), (1, 2)]
    with sqlite3.connect(tmp_path / "blobs" / ".verified.sqlite") as db:
        verified = {row[0] for row in db.execute("SELECT sha256 FROM verified")}
    assert verified == {hashlib.sha256(d).hexdigest() for d in BLOBS}


def test_a_run_with_time_enough_verifies_everything_and_quarantines_only_the_corrupt(tmp_path: Path) -> None:
    # Given three blobs, one corrupted on disk
    store = _store(tmp_path)
    bad = hashlib.sha256(b"two").hexdigest()
    path = tmp_path / "blobs" / P / "blobs" / "sha256" / bad[:2] / bad
    path.write_bytes(b"TWO")

    # When a run has time for all
    sweep = scrub(store, timedelta(hours=1))

    # Then all were read, the corrupt one is quarantined, and the store now lacks only it
    assert (sweep.checked, sweep.quarantined, sweep.left) == (3, 1, 0)
    assert store.find_missing(P, [(hashlib.sha256(d).hexdigest(), len(d)) for d in BLOBS]) == [(bad, 3)]
    [quarantined] = (tmp_path / "blobs" / P / "quarantine").iterdir()
    assert quarantined.read_bytes() == b"TWO"


def test_a_copy_installed_after_the_corrupt_one_was_read_stays(tmp_path: Path) -> None:
    # Given a corrupt blob, read by the janitor (its inode noted), then replaced by a good upload
    store = _store(tmp_path)
    sha = hashlib.sha256(b"one").hexdigest()
    [seen] = [b for b in store.unlisted_blobs(P, ()) if b.sha256 == sha]
    store.accept_put(P, sha, 3, io.BytesIO(b"one"), 3)

    # When the janitor quarantines what it read / Then the new copy is kept at its address
    assert store.quarantine(P, sha, seen.generation) is False
    assert store.find_missing(P, [(sha, 3)]) == []
