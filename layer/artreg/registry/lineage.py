"""The lineage consumer: turns the registry's events into lineage edges, idempotently (an edge that is
recorded already is left as it is), so that an event delivered twice, or two events that say the same
thing, record one edge. The lineage Lambda (from the bus, through SQS) and the local server (from its
outbox) both feed it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from artreg import events
from artreg.model import versions
from artreg.registry.ports import MetadataStore
from artreg.registry.records import LineageEdge


def edges_of(detail_type: str, detail: Mapping[str, Any]) -> list[LineageEdge]:
    """The edges an event says exist: a commit by a run, that the run produced the version and used each
    of its declared inputs (`name@version`, resolved at commit); a usage, that the run used the version."""
    project = detail["project"]
    if detail_type == events.COMMITTED and detail.get("producer"):
        producer = detail["producer"]
        at = detail["created_at"]
        made = [_edge(project, producer, "produced", detail["name"], detail["version"], at)]
        for ref in producer.get("inputs") or []:
            name, _, version = ref.partition("@")
            if versions.is_version(version):  # inputs of versions committed before they were resolved are not
                made.append(_edge(project, producer, "used", name, version, at))
        return made
    if detail_type == events.USED:
        return [_edge(project, detail, "used", detail["name"], detail["version"], detail["at"])]
    return []


def _edge(
    project: str, run: Mapping[str, Any], kind: Literal["produced", "used"], name: str, version: str, at: str
) -> LineageEdge:
    return LineageEdge(
        project=project,
        run_id=run["run_id"],
        kind=kind,
        name=name,
        version=version,
        pipeline=run.get("pipeline"),
        step=run.get("step"),
        at=datetime.fromisoformat(at),
    )


class LineageRecorder:
    def __init__(self, store: MetadataStore):
        self.store = store

    def record(self, detail_type: str, detail: Mapping[str, Any]) -> int:
        """Records the edges of one event; answers how many were new."""
        return sum(self.store.put_edge(edge) for edge in edges_of(detail_type, detail))
