"""The SQLite store's tables, and its rows to records and back (see `sqlite_store`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from artreg.events import Event
from artreg.registry.keys import time_key
from artreg.registry.records import Head, StoredVersion, latest_first

SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (
    project TEXT NOT NULL, name TEXT NOT NULL, revision INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name)
);
CREATE TABLE IF NOT EXISTS versions (
    project TEXT NOT NULL, name TEXT NOT NULL, sort_key TEXT NOT NULL, version TEXT NOT NULL,
    state TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name, sort_key)
);
CREATE TABLE IF NOT EXISTS aliases (
    project TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, sort_key TEXT NOT NULL,
    PRIMARY KEY (project, name, alias)
);
CREATE TABLE IF NOT EXISTS alias_history (
    project TEXT NOT NULL, name TEXT NOT NULL, alias TEXT NOT NULL, at TEXT NOT NULL,
    revision INTEGER NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name, alias, at, revision)
);
CREATE TABLE IF NOT EXISTS uploads (
    project TEXT NOT NULL, upload_id TEXT NOT NULL, state TEXT NOT NULL, committed_version TEXT,
    expires_at TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, upload_id)
);
CREATE INDEX IF NOT EXISTS uploads_by_expiry ON uploads (state, expires_at);
CREATE TABLE IF NOT EXISTS upload_batches (
    project TEXT NOT NULL, upload_id TEXT NOT NULL, batch TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, upload_id, batch)
);
CREATE TABLE IF NOT EXISTS remote_changes (
    project TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, path TEXT NOT NULL,
    fingerprint TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name, version, path)
);
CREATE TABLE IF NOT EXISTS usages (
    project TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL, run_id TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name, version, run_id)
);
CREATE INDEX IF NOT EXISTS usages_by_run ON usages (project, run_id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, detail_type TEXT NOT NULL, json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_positions (
    consumer TEXT PRIMARY KEY, delivered_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lineage (
    project TEXT NOT NULL, run_id TEXT NOT NULL, run_position TEXT NOT NULL,
    name TEXT NOT NULL, sort_key TEXT NOT NULL, version_position TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, run_id, run_position)
);
CREATE UNIQUE INDEX IF NOT EXISTS lineage_by_version ON lineage (project, name, sort_key, version_position);
CREATE TABLE IF NOT EXISTS links (
    project TEXT NOT NULL, name TEXT NOT NULL, sort_key TEXT NOT NULL, role TEXT NOT NULL,
    target_name TEXT NOT NULL, target_sort_key TEXT NOT NULL, holder_position TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, name, sort_key, role)
);
CREATE TABLE IF NOT EXISTS runs (
    project TEXT NOT NULL, run_id TEXT NOT NULL, position TEXT NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (project, run_id)
);
CREATE INDEX IF NOT EXISTS runs_by_last_seen ON runs (project, position);
CREATE UNIQUE INDEX IF NOT EXISTS links_by_target ON links (project, target_name, target_sort_key, holder_position);
"""


def head_of(text: str) -> Head:
    return Head.model_validate_json(text)


def version_of(text: str) -> StoredVersion:
    version = StoredVersion.model_validate_json(text)
    version.aliases = latest_first(version.aliases)
    return version


def write_events(db: sqlite3.Connection, made: Sequence[Event]) -> None:
    """The events of a write, in its transaction: the outbox's rows."""
    db.executemany(
        "INSERT INTO outbox (created_at, detail_type, json) VALUES (?, ?, ?)",
        [(time_key(event.time), event.detail_type, event.detail_json()) for event in made],
    )
