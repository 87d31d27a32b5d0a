"""The local server's `Idempotency-Key` records: a Powertools persistence layer over a SQLite table,
with the semantics of its DynamoDB one (`artreg.api.idempotency` holds the rule; this only stores).

A record is taken when none exists, when it has expired, or when it is in progress past its
in-progress expiry (its request died); otherwise the existing record is handed back, its payload
checked, exactly as DynamoDB's conditional put does."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expiry INTEGER NOT NULL,            -- seconds since the epoch, as Powertools keeps it
    in_progress_expiry INTEGER,         -- milliseconds since the epoch
    payload_hash TEXT NOT NULL DEFAULT '',
    response TEXT NOT NULL DEFAULT ''
)
"""


class SqlitePersistenceLayer(BasePersistenceLayer):
    def __init__(self, path: Path):
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path
        self._local = threading.local()
        with self._db() as db:
            db.execute(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def _get_record(self, idempotency_key: str) -> DataRecord:
        row = self._db().execute("SELECT * FROM idempotency WHERE key = ?", (idempotency_key,)).fetchone()
        if row is None:
            raise IdempotencyItemNotFoundError
        return _record(row)

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # the check and the write are one step, as DynamoDB's condition
        try:
            row = db.execute("SELECT * FROM idempotency WHERE key = ?", (data_record.idempotency_key,)).fetchone()
            if row is not None:
                old = _record(row)
                taken_over = (old.expiry_timestamp or 0) < int(now) or (
                    old.status == STATUS_CONSTANTS["INPROGRESS"]
                    and old.in_progress_expiry_timestamp is not None
                    and old.in_progress_expiry_timestamp < int(now * 1000)
                )
                if not taken_over:
                    db.execute("ROLLBACK")
                    self._validate_payload(data_payload=data_record, stored_data_record=old)
                    raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            db.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (
                    data_record.idempotency_key,
                    data_record.status,
                    data_record.expiry_timestamp,
                    data_record.in_progress_expiry_timestamp,
                    data_record.payload_hash or "",
                    "",
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _update_record(self, data_record: DataRecord) -> None:
        self._db().execute(
            "UPDATE idempotency SET status = ?, expiry = ?, response = ?, payload_hash = ? WHERE key = ?",
            (
                data_record.status,
                data_record.expiry_timestamp,
                data_record.response_data,
                data_record.payload_hash or "",
                data_record.idempotency_key,
            ),
        )

    def _delete_record(self, data_record: DataRecord) -> None:
        self._db().execute("DELETE FROM idempotency WHERE key = ?", (data_record.idempotency_key,))

    def start_over(self) -> int:
        """What a server starting on this folder does first: removes the records past their expiry
        (DynamoDB's TTL does this on AWS), and those in progress, whose requests died with the server
        before it, so that their retries act now rather than after the in-progress expiry."""
        return (
            self._db()
            .execute(
                "DELETE FROM idempotency WHERE expiry < ? OR status = ?",
                (int(time.time()), STATUS_CONSTANTS["INPROGRESS"]),
            )
            .rowcount
        )


def _record(row: tuple[str, str, int, int | None, str, str]) -> DataRecord:
    key, status, expiry, in_progress_expiry, payload_hash, response = row
    return DataRecord(
        idempotency_key=key,
        status=status,
        expiry_timestamp=expiry,
        in_progress_expiry_timestamp=in_progress_expiry,
        response_data=response,
        payload_hash=payload_hash,
    )
