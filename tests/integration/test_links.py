"""Links between versions (API.md, Links), on both back ends: pinned at link time, listed both ways,
inline in the record, compare-and-swap, refused deletes of linked versions, and concurrent changes."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from artreg.model.errors import Conflict, Invalid, NotFound, PreconditionFailed
from artreg.model.wire import MoveAlias, VersionRecord
from tests.conftest import FAST, Backend, aws_backend, local_backend

P = "vision"


def log(backend: Backend, name: str, data: bytes, **request: Any) -> VersionRecord:
    return backend.log(P, name, {"data.bin": data}, **request).record


def dataset_and_model(backend: Backend) -> None:
    """iris 1.0.0 at production, iris 2.0.0, and fraud 1.0.0 (a model with no files of its own links)."""
    log(backend, "iris", b"iris v1", type="dataset")
    backend.registry.move_alias(P, "iris", "production", MoveAlias(version="1.0.0"))
    log(backend, "iris", b"iris v2", type="dataset")
    log(backend, "fraud", b"weights", type="model")


def link_rows(backend: Backend, name: str = "fraud", ref: str = "1.0.0") -> list[tuple[str, str, str]]:
    page = backend.registry.list_links(P, name, ref)
    return [(link.role, link.target.name, link.target.version) for link in page.items]


def test_a_link_by_alias_keeps_the_version_it_had_when_the_alias_moves_on(backend: Backend) -> None:
    # Given a model version linked to the dataset by its alias
    dataset_and_model(backend)
    made = backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@production", caller="trainer")
    assert (made.target.version, made.by) == ("1.0.0", "trainer")
    # When the alias moves on to another version
    backend.registry.move_alias(P, "iris", "production", MoveAlias(version="2.0.0"))
    # Then the link still names the version and digest it had, in the record and in the listing
    record = backend.registry.resolve(P, "fraud", "latest").to_record()
    (link,) = record.links
    iris_v1 = backend.registry.resolve(P, "iris", "1.0.0")
    assert (link.role, link.target.version, link.target.digest) == ("training_data", "1.0.0", iris_v1.digest)
    assert not record.links_truncated
    assert link_rows(backend) == [("training_data", "iris", "1.0.0")]
    # And the dataset version says who links to it; the newer one is linked by nobody
    (holder,) = backend.registry.linked_by(P, "iris", "1.0.0").items
    assert (holder.role, holder.source.name, holder.source.version) == ("training_data", "fraud", "1.0.0")
    assert backend.registry.linked_by(P, "iris", "2.0.0").items == []


def test_links_at_commit_are_pinned_and_inline(backend: Backend) -> None:
    # Given a dataset and a checkpoint
    dataset_and_model(backend)
    log(backend, "ckpt", b"epoch 3", type="checkpoint")
    # When a model version is logged with links
    record = log(
        backend,
        "fraud",
        b"weights v2",
        type="model",
        links={"training_data": "iris@production", "checkpoints/epoch-3": "ckpt"},
    )
    # Then its record carries them in role order, pinned, and so does every read of it
    expected = [("checkpoints/epoch-3", "ckpt", "1.0.0"), ("training_data", "iris", "1.0.0")]
    assert [(x.role, x.target.name, x.target.version) for x in record.links] == expected
    assert link_rows(backend, ref="latest") == expected
    assert [x.role for x in backend.registry.resolve(P, "fraud", "2.0.0").links] == [e[0] for e in expected]


def test_a_link_to_a_missing_or_deleted_version_is_not_found_and_writes_nothing(backend: Backend) -> None:
    dataset_and_model(backend)
    backend.registry.delete_version(P, "iris", "2.0.0")
    before = backend.registry.store.get_head(P, "fraud")
    for target in ("iris@9.0.0", "iris@2.0.0", "nothing@latest", "iris@staging"):
        # When a link names a version that is not there, or deleted
        with pytest.raises(NotFound):
            backend.registry.link(P, "fraud", "1.0.0", "training_data", target)
        # Or a new version's upload does
        with pytest.raises(NotFound):
            log(backend, "fraud", b"weights v2", type="model", links={"training_data": target})
    # Then nothing was written: no link, no version, the head as it was
    assert link_rows(backend) == []
    assert backend.registry.linked_by(P, "iris", "2.0.0").items == []
    assert backend.registry.store.get_head(P, "fraud") == before


@pytest.mark.parametrize(
    "role", ["Training", "1data", "", "a/b/c/d/e", "a//b", "a/", "x" * 65, "data set", "data#set", "ünï"]
)
def test_a_bad_role_is_invalid_and_writes_nothing(backend: Backend, role: str) -> None:
    dataset_and_model(backend)
    with pytest.raises(Invalid):
        backend.registry.link(P, "fraud", "1.0.0", role, "iris@1.0.0")
    with pytest.raises(Invalid):
        log(backend, "fraud", b"weights v2", type="model", links={role: "iris@1.0.0"})
    assert link_rows(backend) == []
    assert backend.registry.resolve(P, "fraud", "latest").version == "1.0.0"


def test_a_good_role_may_have_up_to_four_segments(backend: Backend) -> None:
    dataset_and_model(backend)
    backend.registry.link(P, "fraud", "1.0.0", "checkpoints/run-7/epoch.3/best_0", "iris@1.0.0")
    assert link_rows(backend) == [("checkpoints/run-7/epoch.3/best_0", "iris", "1.0.0")]


def test_a_version_cannot_link_itself(backend: Backend) -> None:
    dataset_and_model(backend)
    with pytest.raises(Invalid):
        backend.registry.link(P, "fraud", "1.0.0", "me", "fraud@latest")


def test_re_linking_a_role_is_compare_and_swap_with_if_match(backend: Backend) -> None:
    # Given a role linked to iris 1.0.0
    dataset_and_model(backend)
    v1 = backend.registry.resolve(P, "iris", "1.0.0").digest
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@1.0.0")
    # When it is re-pointed expecting another digest, it is refused and stays
    with pytest.raises(PreconditionFailed):
        backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@2.0.0", if_match="0" * 64)
    assert link_rows(backend) == [("training_data", "iris", "1.0.0")]
    # When it is re-pointed expecting the current target's digest, it moves
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@2.0.0", if_match=f'"{v1}"')
    assert link_rows(backend) == [("training_data", "iris", "2.0.0")]
    # And the reverse listings follow it
    assert backend.registry.linked_by(P, "iris", "1.0.0").items == []
    assert [h.source.version for h in backend.registry.linked_by(P, "iris", "2.0.0").items] == ["1.0.0"]
    # And a role that does not exist fails any If-Match
    with pytest.raises(PreconditionFailed):
        backend.registry.link(P, "fraud", "1.0.0", "eval_data", "iris@2.0.0", if_match=v1)


def test_unlink_removes_the_link_both_ways(backend: Backend) -> None:
    dataset_and_model(backend)
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@1.0.0")
    backend.registry.unlink(P, "fraud", "1.0.0", "training_data")
    assert link_rows(backend) == []
    assert backend.registry.resolve(P, "fraud", "1.0.0").links == []
    assert backend.registry.linked_by(P, "iris", "1.0.0").items == []
    with pytest.raises(NotFound):
        backend.registry.unlink(P, "fraud", "1.0.0", "training_data")


def test_deleting_a_linked_version_is_refused_unless_forced(backend: Backend) -> None:
    # Given a model linking iris 2.0.0 (held by no alias but latest)
    dataset_and_model(backend)
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@2.0.0")
    # When iris 2.0.0 is deleted, it is refused: 409 linked, naming who links it, and nothing changed
    with pytest.raises(Conflict) as refused:
        backend.registry.delete_version(P, "iris", "2.0.0")
    assert refused.value.code == "linked"
    assert refused.value.details["linked_by"] == ["fraud@1.0.0 (training_data)"]
    assert backend.registry.resolve(P, "iris", "2.0.0").state == "committed"
    # When it is unlinked, it may be deleted
    backend.registry.unlink(P, "fraud", "1.0.0", "training_data")
    backend.registry.delete_version(P, "iris", "2.0.0")
    # And with ?force=true a linked version is deleted; the link stays pinned to it
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@1.0.0")
    backend.registry.delete_version(P, "iris", "1.0.0", force=True)
    assert link_rows(backend) == [("training_data", "iris", "1.0.0")]
    assert [h.source.name for h in backend.registry.linked_by(P, "iris", "1.0.0").items] == ["fraud"]


def test_a_version_linked_by_a_deleted_version_is_freed_by_unlinking_the_deleted_one(backend: Backend) -> None:
    # Given a model version that links iris 2.0.0, deleted itself
    dataset_and_model(backend)
    log(backend, "fraud", b"weights v2", type="model", links={"training_data": "iris@2.0.0"})
    backend.registry.delete_version(P, "fraud", "2.0.0")
    with pytest.raises(Conflict):
        backend.registry.delete_version(P, "iris", "2.0.0")
    # When the deleted version's link is removed (named by its version number)
    backend.registry.unlink(P, "fraud", "2.0.0", "training_data")
    # Then the dataset version may be deleted
    assert backend.registry.delete_version(P, "iris", "2.0.0").state == "deleted"


def test_links_page_in_role_order_and_the_record_inlines_what_fits(backend: Backend) -> None:
    # Given a version with 25 links, and a store that inlines only a few kilobytes of them
    dataset_and_model(backend)
    store = backend.registry.store
    store.limits = replace(store.limits, link_bytes=2000)  # type: ignore[misc]
    roles = [f"checkpoints/epoch-{i:02d}" for i in range(25)]
    for role in reversed(roles):
        backend.registry.link(P, "fraud", "1.0.0", role, "iris@1.0.0")
    # When the links are paged through
    seen, cursor = [], None
    while True:
        page = backend.registry.list_links(P, "fraud", "1.0.0", limit=10, cursor=cursor)
        seen += [link.role for link in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    # Then every link comes once, in role order; the record holds some, and says it is truncated
    assert seen == roles
    record = backend.registry.resolve(P, "fraud", "1.0.0")
    assert 0 < len(record.links) < 25
    assert record.links_truncated
    # And the 25 holders of iris 1.0.0 page the same way
    holders, cursor = [], None
    while True:
        by = backend.registry.linked_by(P, "iris", "1.0.0", limit=7, cursor=cursor)
        holders += [h.role for h in by.items]
        cursor = by.next_cursor
        if cursor is None:
            break
    assert holders == roles
    # And re-pointing a link the record does not hold inline counts it once still
    backend.registry.link(P, "fraud", "1.0.0", roles[0], "iris@2.0.0")  # linked last: not inline
    assert backend.registry.resolve(P, "fraud", "1.0.0").link_count == 25
    with pytest.raises(Invalid):
        backend.registry.list_links(P, "fraud", "1.0.0", cursor="bm90LWEtY3Vyc29y")


def test_a_link_survives_alias_moves_of_the_holder(backend: Backend) -> None:
    # Given the linked model version held by an alias (its record is copied for a one-read resolve)
    dataset_and_model(backend)
    backend.registry.move_alias(P, "fraud", "production", MoveAlias(version="1.0.0"))
    backend.registry.link(P, "fraud", "production", "training_data", "iris@1.0.0")
    # Then reading it by that alias and by latest shows the link too
    for ref in ("production", "latest", "1.0.0"):
        assert [x.role for x in backend.registry.resolve(P, "fraud", ref).links] == ["training_data"]
    backend.registry.unlink(P, "fraud", "production", "training_data")
    for ref in ("production", "latest", "1.0.0"):
        assert backend.registry.resolve(P, "fraud", ref).links == []


# ---------------------------------------------------------------- concurrency


def _concurrent_link_changes(backend: Backend) -> None:
    """16 threads, each linking or unlinking its own roles on one version, in a random order; then the
    set is what any serial order of the same calls gives (each role's last call decides)."""
    dataset_and_model(backend)
    for i in range(8):  # half of the roles exist already, to be unlinked or re-pointed
        backend.registry.link(P, "fraud", "1.0.0", f"role-{i}", "iris@1.0.0")
    plan = random.Random(3)
    calls: list[tuple[str, str | None]] = []
    for i in range(16):
        role = f"role-{i}"
        calls.append((role, None if i < 8 and plan.random() < 0.5 else plan.choice(["iris@1.0.0", "iris@2.0.0"])))
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(calls))

    def call(role: str, target: str | None) -> None:
        try:
            barrier.wait()
            if target is None:
                backend.registry.unlink(P, "fraud", "1.0.0", role)
            else:
                backend.registry.link(P, "fraud", "1.0.0", role, target)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=call, args=c) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    expected = sorted((role, "iris", t.split("@")[1]) for role, t in calls if t is not None)
    assert link_rows(backend) == expected
    record = backend.registry.resolve(P, "fraud", "1.0.0")
    assert sorted((x.role, x.target.name, x.target.version) for x in record.links) == expected
    assert record.link_count == len(expected)
    by_target = {v: sorted(h.role for h in backend.registry.linked_by(P, "iris", v).items) for v in ("1.0.0", "2.0.0")}
    assert by_target == {v: [r for r, _, tv in expected if tv == v] for v in ("1.0.0", "2.0.0")}


def test_concurrent_link_changes_on_dynamodb_lose_nothing(aws: dict[str, Any]) -> None:
    # moto serialised (as DynamoDB makes each request atomic), with TransactionConflict cancellations
    backend = aws_backend(aws, conflict_rate=0.2, policy=replace(FAST, commit_deadline_s=120))
    _concurrent_link_changes(backend)
    assert backend.registry.store.client.injected_conflicts > 0  # type: ignore[attr-defined]


def test_the_events_of_links_are_the_same_on_both_back_ends(aws: dict[str, Any], tmp_path: Path) -> None:
    # Given links made at commit, after, re-pointed and removed, at the same time on DynamoDB and SQLite
    from artreg.aws.dynamodb_stream import event_of_stream_record
    from tests.integration.test_events import FixedClock
    from tests.support.streams import TableStream

    dynamo, sqlite = aws_backend(aws), local_backend(tmp_path)

    def links(backend: Backend, step: Any) -> None:
        backend.registry.clock = FixedClock()
        log(backend, "iris", b"iris v1", type="dataset")
        step()  # each write seen on its own by the stream, as DynamoDB's stream records each
        backend.registry.move_alias(P, "iris", "production", MoveAlias(version="1.0.0"))
        step()
        log(backend, "iris", b"iris v2", type="dataset")
        step()
        log(backend, "fraud", b"weights", type="model")
        step()
        log(backend, "fraud", b"w2", type="model", links={"training_data": "iris@production", "base": "fraud@1.0.0"})
        step()
        backend.registry.link(P, "fraud", "2.0.0", "training_data", "iris@2.0.0", caller="trainer")
        step()
        backend.registry.unlink(P, "fraud", "2.0.0", "base", caller="trainer")
        step()

    table = TableStream(aws["dynamodb"], "artreg-test")
    with table.capture() as stream:
        links(dynamo, table.step)
    links(sqlite, lambda: None)
    # When the stream's records are turned into events, and the SQLite outbox is read
    from_stream = [e for e in (event_of_stream_record(r) for r in stream) if e is not None]
    from_outbox = [e for _, e in sqlite.registry.store.outbox_pending("test", 1000)]  # type: ignore[attr-defined]
    # Then they are the same events (ids and details), the link events among them
    assert sorted(e.detail_type + e.detail_json() for e in from_stream) == sorted(
        e.detail_type + e.detail_json() for e in from_outbox
    )
    kinds = [e.detail_type for e in from_outbox]
    assert (kinds.count("ArtifactVersionLinked"), kinds.count("ArtifactVersionUnlinked")) == (3, 1)


def test_concurrent_link_changes_on_sqlite_lose_nothing(tmp_path: Path) -> None:
    _concurrent_link_changes(local_backend(tmp_path))


def test_links_are_linked_edges_in_lineage(backend: Backend) -> None:
    # Given a model version linking the dataset and a checkpoint
    dataset_and_model(backend)
    log(backend, "ckpt", b"epoch 3", type="checkpoint")
    backend.registry.link(P, "fraud", "1.0.0", "training_data", "iris@1.0.0")
    backend.registry.link(P, "fraud", "1.0.0", "checkpoints/epoch-3", "ckpt@1.0.0")
    # When the model's lineage is asked for upstream
    up = backend.registry.lineage(P, "fraud", "1.0.0", direction="upstream")
    # Then each link is a `linked` edge from the model to its target, with its role
    assert {(e.from_, e.kind, e.to, e.role) for e in up.edges} == {
        ("fraud@1.0.0", "linked", "iris@1.0.0", "training_data"),
        ("fraud@1.0.0", "linked", "ckpt@1.0.0", "checkpoints/epoch-3"),
    }
    # And downstream of the dataset, the model that links it
    down = backend.registry.lineage(P, "iris", "1.0.0", direction="downstream")
    assert {(e.from_, e.kind, e.to, e.role) for e in down.edges} == {
        ("fraud@1.0.0", "linked", "iris@1.0.0", "training_data")
    }
    assert {n.id for n in down.nodes} == {"iris@1.0.0", "fraud@1.0.0"}


def test_a_commit_may_link_the_version_whose_latest_it_takes(backend: Backend) -> None:
    # Given fraud 1.0.0 at latest, and 2.0.0 committed linking it (one write moves latest off it too)
    dataset_and_model(backend)
    log(backend, "fraud", b"weights v2", type="model", links={"base": "fraud@latest"})
    assert link_rows(backend, ref="2.0.0") == [("base", "fraud", "1.0.0")]
    # Then 1.0.0 is linked: its deletion is refused until the link is removed
    with pytest.raises(Conflict):
        backend.registry.delete_version(P, "fraud", "1.0.0")
    backend.registry.unlink(P, "fraud", "2.0.0", "base")
    assert backend.registry.delete_version(P, "fraud", "1.0.0").state == "deleted"
