"""The janitor's checkpoints and mark sets in the SQLite store (see `sqlite_store`), as the registry
table holds them on AWS (`artreg.aws.dynamodb_janitor`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from artreg.registry.ports import CheckpointMoved

SCHEMA = """
CREATE TABLE IF NOT EXISTS janitor_checkpoints (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, revision INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS janitor_marks (
    name TEXT NOT NULL, chunk INTEGER NOT NULL, digests BLOB NOT NULL,
    PRIMARY KEY (name, chunk)
);
"""


class JanitorRows:
    """The checkpoint and mark-set methods of `MetadataStore`, mixed into `SqliteStore`."""

    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def get_checkpoint(self, name: str) -> tuple[str, int] | None:
        with self._read() as db:
            row = db.execute("SELECT state, revision FROM janitor_checkpoints WHERE name = ?", (name,)).fetchone()
        return (row[0], row[1]) if row else None

    def save_checkpoint(self, name: str, state: str, revision: int) -> None:
        with self._write() as db:
            row = db.execute("SELECT revision FROM janitor_checkpoints WHERE name = ?", (name,)).fetchone()
            if (row[0] if row else 0) != revision:
                raise CheckpointMoved(name)
            db.execute(
                "INSERT OR REPLACE INTO janitor_checkpoints (name, state, revision) VALUES (?, ?, ?)",
                (name, state, revision + 1),
            )

    def put_mark_chunk(self, name: str, index: int, digests: bytes) -> None:
        with self._write() as db:
            if index == 0:  # a new mark set: the chunks of the last one go
                db.execute("DELETE FROM janitor_marks WHERE name = ?", (name,))
            db.execute(
                "INSERT OR REPLACE INTO janitor_marks (name, chunk, digests) VALUES (?, ?, ?)", (name, index, digests)
            )

    def mark_chunks(self, name: str, count: int) -> list[bytes]:
        with self._read() as db:
            rows = db.execute(
                "SELECT digests FROM janitor_marks WHERE name = ? AND chunk < ? ORDER BY chunk", (name, count)
            ).fetchall()
        if len(rows) != count:
            raise RuntimeError(f"mark set {name} holds {len(rows)} chunks, its checkpoint counts {count}")
        return [bytes(digests) for (digests,) in rows]
