"""What only the SQLite store does: one transaction per change, guarded by the head's revision across
threads and processes, that writes all of a change and its outbox events, or nothing."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from artreg.events import event_id
from artreg.local import sqlite_schema
from artreg.local.sqlite_store import SqliteStore
from artreg.model.errors import Retryable
from artreg.model.wire import AliasMove, FileEntry, UsageRecord
from artreg.registry.ports import HeadMoved, UploadNotPending, VersionTaken
from artreg.registry.records import ArtifactChange, Head, StoredVersion, Upload, VersionDelta

P, N = "vision", "resnet"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SHA = "a" * 64


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def store(db_path: Path) -> SqliteStore:
    return SqliteStore(db_path)


def version(number: str, **fields: Any) -> StoredVersion:
    return StoredVersion(
        project=P,
        name=N,
        type="model",
        version=number,
        created_at=T0,
        size=1,
        file_count=1,
        files=[FileEntry(path="model.pt", size=1, sha256=SHA)],
        digest=hashlib.sha256(number.encode()).hexdigest(),
        **fields,
    )


def upload(upload_id: str) -> Upload:
    return Upload(
        project=P,
        name=N,
        upload_id=upload_id,
        type="model",
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
        entries=[FileEntry(path="model.pt", size=1, sha256=SHA)],
        missing=[SHA],
    )


def commit(current: Head | None, number: str, upload_id: str | None = None, at: datetime = T0) -> ArtifactChange:
    """What the registry writes to commit `number` as the new latest, from the head it read."""
    revision = current.revision if current else 0
    previous = current.latest if current else None
    new = version(number, aliases=["latest"])
    head = Head(
        project=P,
        name=N,
        type="model",
        revision=revision + 1,
        latest=number,
        latest_digest=new.digest,
        highest_release=number,
        version_count=(current.version_count if current else 0) + 1,
        aliases={"latest": number},
        created_at=T0,
        updated_at=at,
    )
    return ArtifactChange(
        head=head,
        expected_revision=revision,
        new_version=new,
        deltas=[VersionDelta(previous, aliases_remove={"latest"})] if previous else [],
        alias_puts={"latest": new},
        history=[AliasMove(alias="latest", version=number, previous_version=previous, at=at)],
        commit_upload=upload_id,
    )


def tables(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read past the store."""
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: sorted(db.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in names}  # noqa: S608


def outbox(path: Path) -> list[tuple[str, dict[str, Any]]]:
    with sqlite3.connect(path) as db:
        return [
            (kind, json.loads(text)) for kind, text in db.execute("SELECT detail_type, json FROM outbox ORDER BY id")
        ]


# ---------------------------------------------------------------- one change, all or nothing


def test_a_commit_is_written_whole_with_its_events(store: SqliteStore, db_path: Path) -> None:
    # Given a pending upload
    store.create_upload(upload("u1"))
    # When it is committed as the first version
    store.apply(commit(None, "1.0.0", "u1"))
    # Then head, version, alias, history and upload all show it
    head = store.get_head(P, N)
    assert head is not None
    assert (head.revision, head.latest) == (1, "1.0.0")
    assert store.get_alias(P, N, "latest") == store.get_version(P, N, "1.0.0")
    assert [m.version for m in store.alias_history(P, N, "latest", None, 10)[0]] == ["1.0.0"]
    committed = store.get_upload(P, "u1")
    assert committed is not None
    assert (committed.state, committed.version) == ("committed", "1.0.0")
    # And its events are in the outbox, with ids derived from what they are about
    events = outbox(db_path)
    assert [kind for kind, _ in events] == ["ArtifactVersionCommitted", "AliasMoved"]
    assert events[0][1]["version"] == "1.0.0"
    assert events[0][1]["digest"] == version("1.0.0").digest
    assert events[0][1]["event_id"] == event_id("ArtifactVersionCommitted", P, N, "1.0.0")
    assert (events[1][1]["alias"], events[1][1]["previous_version"]) == ("latest", None)


def test_a_stale_revision_raises_head_moved_with_the_current_head(store: SqliteStore) -> None:
    # Given an artifact at revision 2
    store.apply(commit(None, "1.0.0"))
    store.apply(commit(store.get_head(P, N), "2.0.0"))
    # When a change expects revision 1, 7, or expects the artifact not to exist (0)
    for expected in (1, 7, 0):
        stale = commit(None, "3.0.0")
        stale.expected_revision = expected
        with pytest.raises(HeadMoved) as moved:
            store.apply(stale)
        # Then it carries the head as it is now, so that the retry reads nothing
        assert moved.value.current == store.get_head(P, N)
        assert moved.value.current is not None
        assert moved.value.current.revision == 2
    # And a change to an artifact that does not exist carries no head
    other = commit(None, "1.0.0")
    other.head = other.head.model_copy(update={"name": "other"})
    other.expected_revision = 3
    with pytest.raises(HeadMoved) as missing:
        store.apply(other)
    assert missing.value.current is None
    assert store.get_head(P, "other") is None


def test_nothing_is_written_when_the_version_exists(store: SqliteStore, db_path: Path) -> None:
    # Given version 1.0.0 and a second pending upload
    store.apply(commit(None, "1.0.0"))
    store.create_upload(upload("u2"))
    before = tables(db_path)
    # When a change tries to create 1.0.0+build.7 (the same precedence) with aliases, history and the upload
    change = commit(store.get_head(P, N), "1.0.0+build.7", "u2")
    change.alias_puts["staging"] = change.alias_puts["latest"]
    with pytest.raises(VersionTaken):
        store.apply(change)
    # Then no row of any table changed: head, versions, aliases, history, upload, outbox
    assert tables(db_path) == before
    pending = store.get_upload(P, "u2")
    assert pending is not None
    assert pending.state == "pending"


def test_an_upload_is_committed_once(store: SqliteStore, db_path: Path) -> None:
    # Given an upload committed as 1.0.0
    store.create_upload(upload("u1"))
    store.apply(commit(None, "1.0.0", "u1"))
    before = tables(db_path)
    # When a concurrent retry commits it again, even as the very version the first took
    for number in ("2.0.0", "1.0.0"):
        with pytest.raises(UploadNotPending):
            store.apply(commit(store.get_head(P, N), number, "u1"))
    # Then nothing was written, and a batch can no longer be added to it
    assert tables(db_path) == before
    with pytest.raises(UploadNotPending):
        store.add_upload_batch(P, "u1", "b1", [], [], {})


def test_a_process_killed_mid_commit_leaves_nothing(db_path: Path) -> None:
    # Given a process killed inside the commit's transaction, after all its writes, before COMMIT
    SqliteStore(db_path).create_upload(upload("u1"))
    child = multiprocessing.get_context("fork").Process(target=_commit_and_die, args=(db_path,))
    child.start()
    child.join(30)
    assert child.exitcode == 9
    # Then no trace of it is left, and the same commit succeeds afterwards (the lock died with it)
    store = SqliteStore(db_path, busy_timeout_s=5)
    assert store.get_head(P, N) is None
    assert store.get_version(P, N, "1.0.0") is None
    assert outbox(db_path) == []
    store.apply(commit(None, "1.0.0", "u1"))
    assert store.get_alias(P, N, "latest") is not None


def _commit_and_die(db_path: Path) -> None:
    def killed(*_: object) -> None:
        os._exit(9)

    with mock.patch.object(sqlite_schema, "write_events", killed):  # in this child process only
        SqliteStore(db_path).apply(commit(None, "1.0.0", "u1"))


def test_a_locked_file_is_retryable(db_path: Path) -> None:
    # Given another connection holding the write lock
    store = SqliteStore(db_path, busy_timeout_s=0.05)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    # When a change waits past the busy timeout
    # Then it is Retryable (503 to the client), and nothing was written
    try:
        with pytest.raises(Retryable):
            store.apply(commit(None, "1.0.0"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.get_head(P, N) is None


def test_a_read_leaves_no_transaction_open_and_the_next_sees_a_commit_of_another_thread(store: SqliteStore) -> None:
    # Given a thread that read the latest version (as the server's event loop resolves, on its own connection)
    store.apply(commit(None, "1.0.0"))
    before = store.get_alias(P, N, "latest")
    assert before is not None
    assert before.version == "1.0.0"
    assert not store._db().in_transaction  # no snapshot held past the read
    # When another thread commits 2.0.0, and the first reads again at once
    head = store.get_head(P, N)
    other = threading.Thread(target=store.apply, args=(commit(head, "2.0.0"),))
    other.start()
    other.join()
    after = store.get_alias(P, N, "latest")
    # Then it sees the commit, by alias, by version and in the head
    assert after is not None
    assert after.version == "2.0.0"
    assert store.get_version(P, N, "2.0.0") == after
    assert getattr(store.get_head(P, N), "latest", None) == "2.0.0"
    assert not store._db().in_transaction


def test_a_read_of_a_locked_file_waits_for_no_writer(db_path: Path) -> None:
    # Given another connection in the middle of a write transaction (WAL: readers go on)
    store = SqliteStore(db_path, busy_timeout_s=0.05)
    store.apply(commit(None, "1.0.0"))
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("DELETE FROM aliases")
    # When the store resolves, by alias and by version
    try:
        by_alias = store.get_alias(P, N, "latest")
        by_version = store.get_version(P, N, "1.0.0")
    finally:
        other.execute("ROLLBACK")
        other.close()
    # Then both answer what was committed, not the writer's uncommitted change, without waiting on it
    assert by_alias is not None
    assert by_alias.version == "1.0.0"
    assert by_version == by_alias


# ---------------------------------------------------------------- races: exactly one wins


def _race(store: SqliteStore, barrier: Any, number: str) -> str:
    head = store.get_head(P, N)
    barrier.wait(10)
    try:
        store.apply(commit(head, number))
    except HeadMoved as moved:
        return f"moved:{moved.current.revision if moved.current else None}"
    return "won"


def test_two_threads_with_the_same_revision_one_wins(store: SqliteStore) -> None:
    # Given an artifact at revision 1, and two threads that read it
    store.apply(commit(None, "1.0.0"))
    barrier = threading.Barrier(2)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(_race(store, barrier, n))) for n in ("2.0.0", "3.0.0")
    ]
    # When both apply a change expecting revision 1 at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one wins, the other is handed revision 2
    assert sorted(results) == ["moved:2", "won"]
    head = store.get_head(P, N)
    assert head is not None
    assert head.revision == 2
    assert len(store.list_versions(P, N, None, 10)) == 2


def _race_in_process(db_path: Path, barrier: Any, number: str, answers: Any) -> None:
    answers.put(_race(SqliteStore(db_path), barrier, number))


def test_two_processes_with_the_same_revision_one_wins(store: SqliteStore, db_path: Path) -> None:
    # Given an artifact at revision 1, and two processes on the same file
    store.apply(commit(None, "1.0.0"))
    context = multiprocessing.get_context("fork")
    barrier, answers = context.Barrier(2), context.Queue()
    children = [
        context.Process(target=_race_in_process, args=(db_path, barrier, n, answers)) for n in ("2.0.0", "3.0.0")
    ]
    # When both apply a change expecting revision 1 at once
    for child in children:
        child.start()
    results = sorted(answers.get(timeout=30) for _ in children)
    for child in children:
        child.join(30)
    # Then exactly one wins, and the store holds its change only
    assert results == ["moved:2", "won"]
    head = store.get_head(P, N)
    assert head is not None
    assert head.revision == 2
    assert [v.version for v in store.list_versions(P, N, None, 10)] in (["2.0.0", "1.0.0"], ["3.0.0", "1.0.0"])


# ---------------------------------------------------------------- reads


def test_versions_are_listed_by_descending_precedence_below_the_cursor(store: SqliteStore) -> None:
    # Given versions committed out of precedence order, one of them deleted later
    head = None
    for number in ("1.0.0", "2.0.0-rc.1", "10.0.0", "2.0.0", "2.0.0-rc.2"):
        store.apply(commit(head, number))
        head = store.get_head(P, N)
    assert head is not None
    store.apply(
        ArtifactChange(
            head=head.model_copy(update={"revision": head.revision + 1}),
            expected_revision=head.revision,
            deltas=[VersionDelta("2.0.0", deleted_at=T0)],
        )
    )
    # When they are listed, from the top and below a cursor
    everything = store.list_versions(P, N, None, 10)
    below = store.list_versions(P, N, everything[1].sort_key, 2)
    # Then precedence decides, deleted ones included
    assert [v.version for v in everything] == ["10.0.0", "2.0.0", "2.0.0-rc.2", "2.0.0-rc.1", "1.0.0"]
    assert [v.state for v in everything][1] == "deleted"
    assert [v.version for v in below] == ["2.0.0-rc.2", "2.0.0-rc.1"]


def test_a_change_to_a_version_shows_through_its_aliases(store: SqliteStore, db_path: Path) -> None:
    # Given a version that latest points at
    store.apply(commit(None, "1.0.0"))
    head = store.get_head(P, N)
    assert head is not None
    # When its metadata and tags change, then it is deleted
    store.apply(
        ArtifactChange(
            head=head.model_copy(update={"revision": 2}),
            expected_revision=1,
            deltas=[VersionDelta("1.0.0", tags=["best"], metadata={"acc": 0.9})],
        )
    )
    # Then the alias reads the new record
    latest = store.get_alias(P, N, "latest")
    assert latest is not None
    assert (latest.tags, latest.metadata) == (["best"], {"acc": 0.9})
    store.apply(
        ArtifactChange(
            head=head.model_copy(update={"revision": 3}),
            expected_revision=2,
            deltas=[VersionDelta("1.0.0", aliases_remove={"latest"}, deleted_at=T0)],
            alias_deletes=["latest"],
            history=[AliasMove(alias="latest", version=None, previous_version="1.0.0", at=T0)],
        )
    )
    # And a deletion is an event too
    assert store.get_alias(P, N, "latest") is None
    deleted = store.get_version(P, N, "1.0.0")
    assert deleted is not None
    assert (deleted.state, deleted.aliases) == ("deleted", [])
    assert [kind for kind, _ in outbox(db_path)][-2:] == ["ArtifactVersionDeleted", "AliasMoved"]


def test_alias_history_pages_newest_first_and_answers_a_past_time(store: SqliteStore) -> None:
    # Given latest moved three times, a minute apart
    head = None
    for i, number in enumerate(("1.0.0", "2.0.0", "3.0.0")):
        store.apply(commit(head, number, at=T0 + timedelta(minutes=i)))
        head = store.get_head(P, N)
    # When its history is read two moves a page
    first, position = store.alias_history(P, N, "latest", None, 2)
    second, end = store.alias_history(P, N, "latest", position, 2)
    # Then it comes newest first, and the last page says so
    assert [m.version for m in first + second] == ["3.0.0", "2.0.0", "1.0.0"]
    assert position is not None
    assert end is None
    # And the alias at a past time is the last move at or before it
    at_second = store.alias_at(P, N, "latest", T0 + timedelta(minutes=1, seconds=30))
    assert at_second is not None
    assert at_second.version == "2.0.0"
    assert store.alias_at(P, N, "latest", T0 - timedelta(seconds=1)) is None


def test_an_upload_reads_back_with_all_its_batches(store: SqliteStore) -> None:
    # Given an upload with two further batches of files
    store.create_upload(upload("u1").model_copy(update={"multipart": {SHA: "m1"}}))
    second = FileEntry(path="b.bin", size=2, sha256="b" * 64)
    third = FileEntry(path="c.bin", size=3, sha256="c" * 64)
    store.add_upload_batch(P, "u1", "b2", [second], ["b" * 64], {"b" * 64: "m2"})
    store.add_upload_batch(P, "u1", "b3", [third], [], {})
    # When it is read with and without its entries
    whole = store.get_upload(P, "u1")
    first_only = store.get_upload(P, "u1", with_entries=False)
    # Then the batches are merged in order, or left out with every entry (a further batch reads only its state)
    assert whole is not None
    assert first_only is not None
    assert [e.path for e in whole.entries] == ["model.pt", "b.bin", "c.bin"]
    assert (whole.missing, whole.multipart) == ([SHA, "b" * 64], {SHA: "m1", "b" * 64: "m2"})
    assert (first_only.entries, first_only.state, first_only.missing) == ([], "pending", [SHA])
    assert store.get_upload(P, "nope") is None


def test_a_repeated_usage_overwrites_and_makes_one_event(store: SqliteStore, db_path: Path) -> None:
    # Given a version
    store.apply(commit(None, "1.0.0"))
    digest = version("1.0.0").digest
    # When a run records its use of it twice
    for minute in (0, 1):
        at = T0 + timedelta(minutes=minute)
        store.put_usage(UsageRecord(project=P, name=N, version="1.0.0", run_id="run-7", at=at, digest=digest))
    # Then one usage is stored, the later one, and one event said so (as on DynamoDB's stream, where the
    # repeat is a MODIFY of the usage item, which is no event)
    assert len(tables(db_path)["usages"]) == 1
    assert "T10:01:00Z" in tables(db_path)["usages"][0][-1]
    used = [detail for kind, detail in outbox(db_path) if kind == "ArtifactVersionUsed"]
    assert len(used) == 1
    assert used[0]["event_id"] == event_id("ArtifactVersionUsed", P, N, "1.0.0", "run-7")
    assert used[0]["digest"] == digest


def test_each_outbox_consumer_reads_from_its_own_position(store: SqliteStore) -> None:
    # Given two commits: four events
    store.apply(commit(None, "1.0.0"))
    store.apply(commit(store.get_head(P, N), "2.0.0", at=T0 + timedelta(minutes=1)))
    pending = store.outbox_pending("lineage", 10)
    assert [e.detail_type for _, e in pending] == [
        "ArtifactVersionCommitted",
        "AliasMoved",
        "ArtifactVersionCommitted",
        "AliasMoved",
    ]
    assert pending[0][1].time == T0
    # When one consumer takes two of them, and another starts at the end
    store.outbox_delivered("lineage", pending[1][0])
    store.outbox_start_at_end("webhook")
    # Then the first gets the other two next, the second nothing, and a position never moves back
    assert [row for row, _ in store.outbox_pending("lineage", 10)] == [pending[2][0], pending[3][0]]
    assert store.outbox_pending("webhook", 10) == []
    store.outbox_delivered("lineage", pending[0][0])
    assert len(store.outbox_pending("lineage", 10)) == 2
