"""The keys both stores order by, made and read here only, so that the two agree on them and on the
positions that page cursors carry: a time (UTC; a naive time counts as UTC), an alias move's place
in its history, and a lineage edge's place among a run's or a version's edges."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from artreg.model import versions
from artreg.registry.records import EdgeKind, LineageEdge, StoredLink

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_MOVE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)#(\d{12})")
EDGE_PREFIX: dict[EdgeKind, str] = {"produced": "P#", "used": "U#"}
# what a position of each kind looks like, for the cursors that carry them
MOVE_PATTERN = f"^{_MOVE.pattern}$"
_REST = r"[^\x00-\x1f]{1,1024}$"  # a name and sort key, or a run id: printable, under a key's size
EDGE_PATTERN = {kind: f"^{prefix}{_REST}" for kind, prefix in EDGE_PREFIX.items()}
ANY_EDGE_PATTERN = f"^[{''.join(p[0] for p in EDGE_PREFIX.values())}]#{_REST}"


def time_key(at: datetime) -> str:
    """A time as fixed-width UTC text, so that string order is time order."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(TIME_FORMAT)


def time_of(key: str) -> datetime:
    return datetime.strptime(key, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class MovePosition:
    """An alias move's place in the alias's history: its time, then the head revision that made it."""

    at: str  # a time_key
    revision: int

    @classmethod
    def of(cls, at: datetime, revision: int) -> MovePosition:
        return cls(time_key(at), revision)

    @classmethod
    def parse(cls, text: str) -> MovePosition | None:
        match = _MOVE.fullmatch(text)
        return cls(match[1], int(match[2])) if match else None

    def text(self) -> str:
        return f"{self.at}#{self.revision:012d}"


def run_position(edge: LineageEdge) -> str:
    """Where an edge sits among its run's edges: by kind, version name, then precedence."""
    return f"{EDGE_PREFIX[edge.kind]}{edge.name}#{versions.sort_key(edge.version)}"


def version_position(edge: LineageEdge) -> str:
    """Where an edge sits among its version's edges: by kind, then run id."""
    return f"{EDGE_PREFIX[edge.kind]}{edge.run_id}"


def linked_by_position(link: StoredLink) -> str:
    """Where a link sits among the links to its target: by holder name, precedence, then role."""
    return f"{link.name}#{link.sort_key}#{link.role}"


def run_seen_position(last_seen: datetime, run_id: str) -> str:
    """Where a run sits among its project's runs, most recently seen last: its last time seen, then id."""
    return f"{time_key(last_seen)}#{run_id}"
