"""`GET /v1/projects/{project}/runs` (API.md, Runs) on both back ends: the runs the lineage consumer has
recorded, most recently seen first, counted once, paged."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.model.errors import Invalid
from artreg.registry.lineage import LineageRecorder
from artreg.registry.records import LineageEdge
from tests.conftest import Backend, aws_backend, local_backend

P = "vision"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def edge(run_id: str, kind: str, ref: str, minutes: int) -> LineageEdge:
    name, _, version = ref.partition("@")
    at = T0 + timedelta(minutes=minutes)
    return LineageEdge.model_validate(
        {"project": P, "run_id": run_id, "kind": kind, "name": name, "version": version, "at": at}
    )


def test_runs_are_listed_most_recently_seen_first_and_counted_once(backend: Backend) -> None:
    # Given three runs seen at different times (train-1 seen again last, by an event delivered late)
    store = backend.registry.store
    store.put_edge(edge("train-1", "used", "iris@1.0.0", 0))
    store.put_edge(edge("train-1", "produced", "resnet@1.0.0", 1))
    store.put_edge(edge("eval-1", "used", "resnet@1.0.0", 5))
    store.put_edge(edge("eval-1", "produced", "scores@1.0.0", 6))
    store.put_edge(edge("train-2", "produced", "resnet@2.0.0", 8))
    store.put_edge(edge("train-1", "produced", "resnet@1.1.0", 9))
    store.put_edge(edge("eval-1", "used", "iris@1.0.0", 2))  # an older event, late: last seen stays
    # And an edge recorded twice (an event delivered twice)
    store.put_edge(edge("train-2", "produced", "resnet@2.0.0", 8))
    # When the runs are listed
    page = backend.registry.runs(P)
    # Then most recently seen first, each with its first and last time and what it produced and used
    assert [(r.run_id, r.first_seen, r.last_seen, r.produced, r.used) for r in page.items] == [
        ("train-1", T0, T0 + timedelta(minutes=9), 2, 1),
        ("train-2", T0 + timedelta(minutes=8), T0 + timedelta(minutes=8), 1, 0),
        ("eval-1", T0 + timedelta(minutes=2), T0 + timedelta(minutes=6), 1, 2),
    ]
    assert page.next_cursor is None
    # And they page, two at a time, to the same list
    first = backend.registry.runs(P, limit=2)
    assert first.next_cursor
    rest = backend.registry.runs(P, limit=2, cursor=first.next_cursor)
    assert [r.run_id for r in first.items + rest.items] == ["train-1", "train-2", "eval-1"]
    assert rest.next_cursor is None
    # And another project has none; a forged cursor is refused
    assert backend.registry.runs("other").items == []
    with pytest.raises(Invalid):
        backend.registry.runs(P, cursor="eyJhZnRlciI6IDF9")


def test_a_committed_version_with_a_producer_makes_a_run(backend: Backend) -> None:
    # Given a version logged by a run, its commit event recorded by the lineage consumer
    from artreg import events

    backend.log(P, "iris", {"a": b"1"})
    backend.log(P, "resnet", {"w": b"2"}, producer={"run_id": "train-7", "inputs": ["iris@latest"]})
    stored = backend.registry.store.get_version(P, "resnet", "1.0.0")
    assert stored is not None
    LineageRecorder(backend.registry.store).record(events.COMMITTED, events.committed(stored).detail)
    # Then the run is listed, having produced one version and used one
    (run,) = backend.registry.runs(P).items
    assert (run.run_id, run.produced, run.used, run.last_seen) == ("train-7", 1, 1, stored.created_at)


def _concurrent_edges(backend: Backend) -> None:
    """Eight consumers recording 40 edges of one run at once, each edge twice: 40 counted."""
    errors: list[BaseException] = []
    edges = [edge("train-1", "produced" if i % 2 else "used", f"v{i}@1.0.0", i) for i in range(40)]

    def consume(part: list[LineageEdge]) -> None:
        try:
            for e in part:
                backend.registry.store.put_edge(e)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=consume, args=(edges[i::4],)) for i in range(4)]
    threads += [threading.Thread(target=consume, args=(edges[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    (run,) = backend.registry.runs(P).items
    assert (run.produced, run.used, run.first_seen, run.last_seen) == (20, 20, T0, T0 + timedelta(minutes=39))


def test_concurrent_consumers_count_every_edge_once_on_dynamodb(aws: dict[str, Any]) -> None:
    _concurrent_edges(aws_backend(aws))


def test_concurrent_consumers_count_every_edge_once_on_sqlite(tmp_path: Path) -> None:
    _concurrent_edges(local_backend(tmp_path))
