"""The metadata store on one SQLite file: the embedded default's DynamoDB table.

Every change of an artifact is one `BEGIN IMMEDIATE` transaction that checks the head's revision
first, so it is all or nothing whatever the number of threads and processes writing the same file,
and a process killed mid-commit leaves no trace of it. Each change also writes its events (built by
`artreg.events` from what was written, as for the DynamoDB stream) into the `outbox` table in that same
transaction, where each consumer (`artreg.local.outbox`) reads them from its own position onwards.

The tables, and rows to records, are in `sqlite_schema`. Aliases are pointers to version rows, joined
on read, so that a change to a version is seen through every alias at once (DynamoDB keeps copies
and updates them in the same transaction instead).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from typing import Any

from artreg import events
from artreg.events import Event
from artreg.local import sqlite_rows as rows
from artreg.local import sqlite_schema as schema
from artreg.local.sqlite_janitor import SCHEMA as JANITOR_SCHEMA
from artreg.local.sqlite_janitor import JanitorRows
from artreg.model import manifest, versions
from artreg.model.errors import Conflict, Retryable
from artreg.model.manifest import Entry
from artreg.model.wire import AliasMove, UsageRecord
from artreg.registry import keys
from artreg.registry.keys import MovePosition, time_key, time_of
from artreg.registry.ports import HeadMoved, UploadNotPending, VersionTaken
from artreg.registry.records import (
    ArtifactChange,
    EdgeKind,
    Head,
    LineageEdge,
    RemoteChange,
    RunSeen,
    StoredLink,
    StoredVersion,
    StoreLimits,
    Upload,
    UploadBatch,
    VersionDelta,
)

_TOP = "\U0010ffff"  # sorts after every sort key and time key


class SqliteStore(JanitorRows):
    """`MetadataStore` over the SQLite file at `path`, created with its folder on first use. (Not
    `:memory:`: every thread has its own connection, and would have its own database.)"""

    limits = StoreLimits()  # the deployed registry's, so that what this accepts, AWS accepts too

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 30.0) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        db = self._db()
        try:
            db.executescript(f"BEGIN IMMEDIATE;{schema.SCHEMA}{JANITOR_SCHEMA}COMMIT;")
        except sqlite3.OperationalError as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise _translate(error) from error

    # ------------------------------------------------------------ connections and transactions

    def _db(self) -> sqlite3.Connection:
        """This thread's connection; a child process made by fork opens its own."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        self._local.held = (os.getpid(), db)
        return db

    def close(self) -> None:
        """Closes this thread's connection (others close with their threads)."""
        held: tuple[int, sqlite3.Connection] | None = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():
            held[1].close()
        self._local.held = None

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute(begin)
            yield db
            db.execute("COMMIT")
        except BaseException as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):
                raise _translate(error) from error
            raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction: it takes the file's write lock at once, waiting up to the busy timeout."""
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: one consistent snapshot, never blocked by a writer (WAL)."""
        return self._transaction("BEGIN")

    def _row(self, sql: str, params: tuple[object, ...]) -> Any:
        """The one row (or None) of a single SELECT, which SQLite runs in a read transaction of its own:
        no BEGIN and COMMIT around it, each of which would give up the GIL and wait to take it back
        (behind busy writer threads, that is most of a resolve's time). The statement is stepped to
        its end, so that no read transaction stays open on this thread's connection."""
        try:
            rows = self._db().execute(sql, params).fetchall()
        except sqlite3.OperationalError as error:
            raise _translate(error) from error
        return rows[0] if rows else None

    # ------------------------------------------------------------ heads and versions

    def get_head(self, project: str, name: str) -> Head | None:
        row = self._row("SELECT json FROM heads WHERE project = ? AND name = ?", (project, name))
        return schema.head_of(row[0]) if row else None

    def list_heads(self, project: str, after_name: str | None, limit: int) -> list[Head]:
        after = after_name or ""
        with self._read() as db:
            rows = db.execute(
                "SELECT json FROM heads WHERE project = ? AND name > ? ORDER BY name LIMIT ?",
                (project, after, limit),
            ).fetchall()
        return [schema.head_of(r[0]) for r in rows]

    def get_version(self, project: str, name: str, version: str) -> StoredVersion | None:
        row = self._row(
            "SELECT json FROM versions WHERE project = ? AND name = ? AND sort_key = ?",
            (project, name, versions.sort_key(version)),
        )
        return schema.version_of(row[0]) if row else None

    def get_alias(self, project: str, name: str, alias: str) -> StoredVersion | None:
        row = self._row(
            "SELECT v.json FROM aliases a JOIN versions v"
            " ON v.project = a.project AND v.name = a.name AND v.sort_key = a.sort_key"
            " WHERE a.project = ? AND a.name = ? AND a.alias = ?",
            (project, name, alias),
        )
        return schema.version_of(row[0]) if row else None

    def list_versions(self, project: str, name: str, before_key: str | None, limit: int) -> list[StoredVersion]:
        before = before_key or _TOP
        with self._read() as db:
            rows = db.execute(
                "SELECT json FROM versions WHERE project = ? AND name = ? AND sort_key < ?"
                " ORDER BY sort_key DESC LIMIT ?",
                (project, name, before, limit),
            ).fetchall()
        return [schema.version_of(r[0]) for r in rows]

    def apply(self, change: ArtifactChange) -> None:
        head = change.head
        project, name = head.project, head.name
        with self._write() as db:
            row = db.execute(
                "SELECT revision, json FROM heads WHERE project = ? AND name = ?", (project, name)
            ).fetchone()
            current = schema.head_of(row[1]) if row else None
            expected = change.expected_revision
            if (row[0] if row else 0) != expected or (row is not None and expected == 0):
                raise HeadMoved(current)
            db.execute(
                "INSERT INTO heads (project, name, revision, json) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (project, name) DO UPDATE SET revision = excluded.revision, json = excluded.json",
                (project, name, head.revision, head.model_dump_json()),
            )
            # the upload first: a retried commit that lost the race answers the first result, even for
            # an explicit version, which the winner has taken
            if change.commit_upload and change.new_version:
                updated = db.execute(
                    "UPDATE uploads SET state = 'committed', committed_version = ?"
                    " WHERE project = ? AND upload_id = ? AND state = 'pending'",
                    (change.new_version.version, project, change.commit_upload),
                )
                if updated.rowcount != 1:
                    raise UploadNotPending()
            writes: list[events.Written] = []
            if change.new_version:
                self._insert_version(db, change.new_version)
                writes.append(events.VersionWritten(change.new_version, None))
            writes += [self._apply_delta(db, project, name, delta, current) for delta in change.deltas]
            for alias, target in change.alias_puts.items():
                db.execute(
                    "INSERT INTO aliases (project, name, alias, sort_key) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (project, name, alias) DO UPDATE SET sort_key = excluded.sort_key",
                    (project, name, alias, target.sort_key),
                )
            db.executemany(
                "DELETE FROM aliases WHERE project = ? AND name = ? AND alias = ?",
                [(project, name, alias) for alias in change.alias_deletes],
            )
            for move in change.history:
                db.execute(
                    "INSERT INTO alias_history (project, name, alias, at, revision, json) VALUES (?, ?, ?, ?, ?, ?)",
                    (project, name, move.alias, time_key(move.at), head.revision, move.model_dump_json()),
                )
                writes.append(events.MoveWritten(project, name, move, head.revision, change.digest_after(move)))
            writes += [rows.set_link(db, link) for link in change.links_set]
            writes += [rows.remove_link(db, unlink) for unlink in change.links_removed]
            schema.write_events(db, events.all_emitted(writes))

    @staticmethod
    def _insert_version(db: sqlite3.Connection, version: StoredVersion) -> None:
        try:
            db.execute(
                "INSERT INTO versions (project, name, sort_key, version, state, json) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    version.project,
                    version.name,
                    version.sort_key,
                    version.version,
                    version.state,
                    version.model_dump_json(),
                ),
            )
        except sqlite3.IntegrityError:
            raise VersionTaken() from None

    @staticmethod
    def _apply_delta(
        db: sqlite3.Connection, project: str, name: str, delta: VersionDelta, current: Head | None
    ) -> events.VersionWritten:
        """Changes one version row; answers it as written, and its state before."""
        key = versions.sort_key(delta.version)
        row = db.execute(
            "SELECT json FROM versions WHERE project = ? AND name = ? AND sort_key = ?", (project, name, key)
        ).fetchone()
        if row is None:  # as DynamoDB's attribute_exists condition: the artifact is not what was read
            raise HeadMoved(current)
        if (
            delta.require_unlinked
            and db.execute(
                "SELECT 1 FROM links WHERE project = ? AND target_name = ? AND target_sort_key = ? LIMIT 1",
                (project, name, key),
            ).fetchone()
        ):  # linked meanwhile: as DynamoDB's condition on its counter
            raise HeadMoved(current)
        version = StoredVersion.model_validate_json(row[0])
        update: dict[str, Any] = {"aliases": sorted((set(version.aliases) | delta.aliases_add) - delta.aliases_remove)}
        if delta.tags is not None:
            update["tags"] = list(delta.tags)
        if delta.metadata is not None:
            update["metadata"] = dict(delta.metadata)
        if delta.deleted_at is not None:
            update |= {"state": "deleted", "deleted_at": delta.deleted_at}
        if delta.links is not None:
            update |= {
                "links": list(delta.links),
                "link_count": delta.link_count,
                "links_truncated": delta.links_truncated,
            }
        changed = version.model_copy(update=update)
        db.execute(
            "UPDATE versions SET state = ?, json = ? WHERE project = ? AND name = ? AND sort_key = ?",
            (changed.state, changed.model_dump_json(), project, name, key),
        )
        return events.VersionWritten(changed, version.state)

    # ------------------------------------------------------------ links

    def get_link(self, project: str, name: str, version: str, role: str) -> StoredLink | None:
        row = self._row(
            "SELECT json FROM links WHERE project = ? AND name = ? AND sort_key = ? AND role = ?",
            (project, name, versions.sort_key(version), role),
        )
        return StoredLink.model_validate_json(row[0]) if row else None

    def list_links(self, project: str, name: str, version: str, after_role: str | None, limit: int) -> list[StoredLink]:
        with self._read() as db:
            rows = db.execute(
                "SELECT json FROM links WHERE project = ? AND name = ? AND sort_key = ? AND role > ?"
                " ORDER BY role LIMIT ?",
                (project, name, versions.sort_key(version), after_role or "", limit),
            ).fetchall()
        return [StoredLink.model_validate_json(r[0]) for r in rows]

    def linked_by(
        self, project: str, name: str, version: str, after: str | None, limit: int
    ) -> tuple[list[StoredLink], str | None]:
        with self._read() as db:
            rows = db.execute(
                "SELECT holder_position, json FROM links WHERE project = ? AND target_name = ?"
                " AND target_sort_key = ? AND holder_position > ? ORDER BY holder_position LIMIT ?",
                (project, name, versions.sort_key(version), after or "", limit + 1),
            ).fetchall()
        found = [StoredLink.model_validate_json(text) for _, text in rows[:limit]]
        return found, (rows[limit - 1][0] if len(rows) > limit else None)

    # ------------------------------------------------------------ alias history

    def alias_history(
        self, project: str, name: str, alias: str, before: MovePosition | None, limit: int
    ) -> tuple[list[AliasMove], MovePosition | None]:
        at, revision = (before.at, before.revision) if before else (_TOP, 0)
        with self._read() as db:
            rows = db.execute(
                "SELECT at, revision, json FROM alias_history"
                " WHERE project = ? AND name = ? AND alias = ? AND (at, revision) < (?, ?)"
                " ORDER BY at DESC, revision DESC LIMIT ?",
                (project, name, alias, at, revision, limit + 1),
            ).fetchall()
        moves = [AliasMove.model_validate_json(r[2]) for r in rows[:limit]]
        more = len(rows) > limit
        return moves, (MovePosition(rows[limit - 1][0], rows[limit - 1][1]) if more else None)

    def alias_at(self, project: str, name: str, alias: str, at: datetime) -> AliasMove | None:
        row = self._row(
            "SELECT json FROM alias_history WHERE project = ? AND name = ? AND alias = ? AND at <= ?"
            " ORDER BY at DESC, revision DESC LIMIT 1",
            (project, name, alias, time_key(at)),
        )
        return AliasMove.model_validate_json(row[0]) if row else None

    # ------------------------------------------------------------ uploads

    def create_upload(self, upload: Upload) -> None:
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO uploads (project, upload_id, state, expires_at, json) VALUES (?, ?, ?, ?, ?)",
                    (
                        upload.project,
                        upload.upload_id,
                        upload.state,
                        time_key(upload.expires_at),
                        upload.model_dump_json(exclude={"state"}),
                    ),
                )
        except sqlite3.IntegrityError:
            raise Conflict(f"upload {upload.upload_id} exists already") from None

    def add_upload_batch(
        self,
        project: str,
        upload_id: str,
        batch_id: str,
        entries: Sequence[Entry],
        missing: Sequence[str],
        multipart: dict[str, str],
    ) -> None:
        # the entries as pydantic writes JSON (in Rust), the rest around them: through Python objects and
        # json.dumps, a batch of a thousand cost several times more
        rest = json.dumps({"missing": list(missing), "multipart": dict(multipart)}, separators=(",", ":"))
        text = f'{{"entries":{manifest.ENTRIES.dump_json(list(entries)).decode()},{rest[1:]}'
        with self._write() as db:
            row = db.execute(
                "SELECT state FROM uploads WHERE project = ? AND upload_id = ?", (project, upload_id)
            ).fetchone()
            if row is None or row[0] != "pending":
                raise UploadNotPending()
            db.execute(
                "INSERT OR REPLACE INTO upload_batches (project, upload_id, batch, json) VALUES (?, ?, ?, ?)",
                (project, upload_id, batch_id, text),
            )

    def get_upload(self, project: str, upload_id: str, with_entries: bool = True) -> Upload | None:
        # without entries, SQLite drops the first request's (in C): each further batch of a large log
        # reads the upload to check its state, and parsing a thousand entries cost it more than the rest
        with self._read() as db:
            row = db.execute(
                "SELECT state, committed_version, CASE WHEN ? THEN json ELSE json_remove(json, '$.entries') END"
                " FROM uploads WHERE project = ? AND upload_id = ?",
                (with_entries, project, upload_id),
            ).fetchone()
            batches = (
                db.execute(
                    "SELECT json FROM upload_batches WHERE project = ? AND upload_id = ? ORDER BY rowid",
                    (project, upload_id),
                ).fetchall()
                if row and with_entries
                else []
            )
        if row is None:
            return None
        return Upload.model_validate_json(row[2]).as_read(row[0], row[1], map(_batch_of, batches))

    def get_upload_parts(self, project: str, upload_id: str) -> tuple[Upload, list[Callable[[], list[Entry]]]] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT state, committed_version, json FROM uploads WHERE project = ? AND upload_id = ?",
                (project, upload_id),
            ).fetchone()
            if row is None:
                return None
            further, rowids = [], []
            # a batch's blobs without its entries (read when asked for): SQLite's JSON functions skip
            # them in C, where parsing them in Python cost as much as the commit's pass over them
            for rowid, missing, multipart in db.execute(
                "SELECT rowid, json_extract(json, '$.missing'), json_extract(json, '$.multipart') FROM upload_batches"
                " WHERE project = ? AND upload_id = ? ORDER BY rowid",
                (project, upload_id),
            ):
                further.append(UploadBatch([], json.loads(missing), json.loads(multipart)))
                rowids.append(rowid)
        first = Upload.model_validate_json(row[2])
        readers: list[Callable[[], list[Entry]]] = [lambda: list(first.entries)]
        readers += [functools.partial(self._batch_entries, rowid) for rowid in rowids]
        return first.model_copy(update={"entries": []}).as_read(row[0], row[1], further), readers

    def _batch_entries(self, rowid: int) -> list[Entry]:
        with self._read() as db:
            found = db.execute("SELECT json FROM upload_batches WHERE rowid = ?", (rowid,)).fetchone()
        if found is None:  # a retried batch replaced it while this commit read the upload: read it again
            raise Retryable("the upload changed while it was being committed; commit again")
        return _entries_of_batch(found[0])

    def expired_uploads(self, now: datetime, limit: int) -> list[Upload]:
        with self._read() as db:
            rows = db.execute(
                "SELECT project, upload_id FROM uploads WHERE state = 'pending' AND expires_at <= ? "
                "ORDER BY expires_at LIMIT ?",
                (time_key(now), limit),
            ).fetchall()
        found = (self.get_upload(project, upload_id) for project, upload_id in rows)
        return [upload for upload in found if upload is not None]

    def pending_uploads(
        self, project: str, now: datetime, upload_ttl: timedelta, expiring_from: datetime | None = None
    ) -> Iterator[Upload]:
        since = time_key(expiring_from) if expiring_from else ""  # every time key sorts after ""
        with self._read() as db:
            rows = db.execute(
                "SELECT upload_id FROM uploads WHERE state = 'pending' AND project = ? AND expires_at >= ?",
                (project, since),
            ).fetchall()
        for (upload_id,) in rows:
            upload = self.get_upload(project, upload_id)
            if upload is not None and upload.state == "pending":
                yield upload

    def note_remote_change(self, change: RemoteChange) -> bool:
        key = (change.project, change.name, change.version, change.path)
        with self._write() as db:
            row = db.execute(
                "SELECT fingerprint FROM remote_changes WHERE project = ? AND name = ? AND version = ? AND path = ?",
                key,
            ).fetchone()
            if row and row[0] == change.fingerprint:
                return False
            db.execute(
                "INSERT OR REPLACE INTO remote_changes (project, name, version, path, fingerprint, json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (*key, change.fingerprint, change.model_dump_json()),
            )
            schema.write_events(db, events.all_emitted([events.RemoteChangeWritten(change)]))
        return True

    def projects(self) -> Iterator[str]:
        with self._read() as db:
            rows = db.execute("SELECT DISTINCT project FROM heads ORDER BY project").fetchall()
        yield from (project for (project,) in rows)

    def list_projects(self, after: str | None, limit: int) -> list[str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT project FROM heads WHERE project > ? ORDER BY project LIMIT ?",
                (after or "", limit),
            ).fetchall()
        return [project for (project,) in rows]

    def expire_upload(self, project: str, upload_id: str) -> bool:
        with self._write() as db:
            changed = db.execute(
                "UPDATE uploads SET state = 'expired' WHERE project = ? AND upload_id = ? AND state = 'pending'",
                (project, upload_id),
            ).rowcount
        return changed == 1

    # ------------------------------------------------------------ usages

    def put_usage(self, usage: UsageRecord) -> None:
        """Records a run's use of a version; a repeat overwrites, and (as on DynamoDB's stream, where it is
        a MODIFY) makes no second event."""
        with self._write() as db:
            known = db.execute(
                "SELECT 1 FROM usages WHERE project = ? AND name = ? AND version = ? AND run_id = ?",
                (usage.project, usage.name, usage.version, usage.run_id),
            ).fetchone()
            db.execute(
                "INSERT INTO usages (project, name, version, run_id, json) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (project, name, version, run_id) DO UPDATE SET json = excluded.json",
                (usage.project, usage.name, usage.version, usage.run_id, usage.model_dump_json()),
            )
            schema.write_events(db, events.all_emitted([events.UsageWritten(usage, first=not known)]))

    # ------------------------------------------------------------ lineage

    def put_edge(self, edge: LineageEdge) -> bool:
        with self._write() as db:
            inserted = rows.insert_edge(db, edge)
            if inserted:
                rows.see_run(db, edge)
        return inserted

    def list_runs(self, project: str, before: str | None, limit: int) -> tuple[list[RunSeen], str | None]:
        with self._read() as db:
            return rows.list_runs(db, project, before, limit)

    def run_edges(
        self, project: str, run_id: str, kind: EdgeKind | None, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        prefix = keys.EDGE_PREFIX[kind] if kind else ""
        with self._read() as db:
            rows = db.execute(
                "SELECT run_position, json FROM lineage WHERE project = ? AND run_id = ?"
                " AND run_position > ? AND substr(run_position, 1, ?) = ? ORDER BY run_position LIMIT ?",
                (project, run_id, _position(after, prefix), len(prefix), prefix, limit + 1),
            ).fetchall()
        return _edges_page(rows, limit)

    def version_edges(
        self, project: str, name: str, version: str, kind: EdgeKind, after: str | None, limit: int
    ) -> tuple[list[LineageEdge], str | None]:
        prefix = keys.EDGE_PREFIX[kind]
        with self._read() as db:
            rows = db.execute(
                "SELECT version_position, json FROM lineage WHERE project = ? AND name = ? AND sort_key = ?"
                " AND version_position > ? AND substr(version_position, 1, 2) = ? ORDER BY version_position LIMIT ?",
                (project, name, versions.sort_key(version), _position(after, prefix), prefix, limit + 1),
            ).fetchall()
        return _edges_page(rows, limit)

    # ------------------------------------------------------------ the outbox

    def outbox_pending(self, consumer: str, limit: int) -> list[tuple[int, Event]]:
        """The events after the last one `consumer` took delivery of, oldest first, with their row ids."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, created_at, detail_type, json FROM outbox"
                " WHERE id > COALESCE((SELECT delivered_id FROM outbox_positions WHERE consumer = ?), 0)"
                " ORDER BY id LIMIT ?",
                (consumer, limit),
            ).fetchall()
        return [(row_id, Event(kind, json.loads(text), time_of(at))) for row_id, at, kind, text in rows]

    def outbox_start_at_end(self, consumer: str) -> None:
        """Gives a consumer that has no position yet the end of the outbox: it gets only later events."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO outbox_positions (consumer, delivered_id)"
                " SELECT ?, COALESCE(MAX(id), 0) FROM outbox",
                (consumer,),
            )

    def outbox_delivered(self, consumer: str, row_id: int) -> None:
        """Marks every event up to row `row_id` delivered to `consumer` (its position never moves back)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox_positions (consumer, delivered_id) VALUES (?, ?) ON CONFLICT (consumer)"
                " DO UPDATE SET delivered_id = MAX(delivered_id, excluded.delivered_id)",
                (consumer, row_id),
            )


def _entries_of_batch(text: str) -> list[Entry]:
    return manifest.stored(json.loads(text)["entries"])


def _batch_of(row: tuple[str]) -> UploadBatch:
    batch = json.loads(row[0])
    return UploadBatch(manifest.stored(batch["entries"]), batch["missing"], batch["multipart"])


def _position(after: str | None, prefix: str) -> str:
    """Where a listing starts: after a position it handed out, or at the start of its prefix."""
    return after or prefix


def _edges_page(rows: list[tuple[str, str]], limit: int) -> tuple[list[LineageEdge], str | None]:
    edges = [LineageEdge.model_validate_json(text) for _, text in rows[:limit]]
    return edges, (rows[limit - 1][0] if len(rows) > limit else None)


def _translate(error: sqlite3.OperationalError) -> Exception:
    """A file locked past the busy timeout is a back end too busy for now: the client retries."""
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return Retryable("the local database is busy; retry shortly", details={"sqlite": str(error)})
    return error
