"""The events of API.md (Events): the one place that decides which writes make an event (`emitted`)
and turns the registry's records into them, for both back ends (the DynamoDB stream publisher and
the SQLite outbox), so that they emit the same events.

A detail is small (no manifest, no metadata: an automation reads the version record when it needs
more) and carries an `event_id` derived from what it is about, so that a redelivery, or the same
change seen twice, has the same id. The JSON Schema of each detail type, with an example event, is
`schemas/<detail-type>.json` beside this module.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from artreg.model.wire import AliasMove, RemoteEntry, UsageRecord
from artreg.registry.records import RemoteChange, StoredLink, StoredVersion, Unlink

COMMITTED = "ArtifactVersionCommitted"
USED = "ArtifactVersionUsed"
ALIAS_MOVED = "AliasMoved"
DELETED = "ArtifactVersionDeleted"
REMOTE_CHANGED = "RemoteReferenceChanged"
LINKED = "ArtifactVersionLinked"
UNLINKED = "ArtifactVersionUnlinked"
DETAIL_TYPES = (COMMITTED, USED, ALIAS_MOVED, DELETED, REMOTE_CHANGED, LINKED, UNLINKED)
DEFAULT_SOURCE = "artreg"


def event_id(*parts: str) -> str:
    """The same id for every delivery of the event of one item (names hold no `/`)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def rfc3339(at: datetime) -> str:
    """A time as API answers write it: UTC, microseconds when there are any, `Z` (naive counts as UTC)."""
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    detail_type: str
    detail: dict[str, Any]
    time: datetime  # when the change happened, not when it was published

    @property
    def event_id(self) -> str:
        value: str = self.detail["event_id"]
        return value

    def detail_json(self) -> str:
        return json.dumps(self.detail, separators=(",", ":"), sort_keys=True, ensure_ascii=False)

    def envelope(self, source: str = DEFAULT_SOURCE) -> dict[str, Any]:
        """The event as EventBridge delivers it (without account and region), its id the event_id:
        what the local server posts to a webhook."""
        return {
            "version": "0",
            "id": self.event_id,
            "detail-type": self.detail_type,
            "source": source,
            "time": rfc3339(self.time.replace(microsecond=0)),
            "resources": [],
            "detail": self.detail,
        }


# ---------------------------------------------------------------- which writes make an event
#
# Each store says what it wrote, as one of these (SQLite as it writes, in the write's transaction;
# DynamoDB from its table's stream), and `emitted` alone decides which writes make which event.


@dataclass(frozen=True)
class VersionWritten:
    version: StoredVersion  # as written
    before: Literal["committed", "deleted"] | None  # its state before the write; None: a new version


@dataclass(frozen=True)
class MoveWritten:
    project: str
    name: str
    move: AliasMove
    revision: int  # the head revision the move made
    digest: str | None  # of the version the alias moved to; None when it was removed


@dataclass(frozen=True)
class UsageWritten:
    usage: UsageRecord
    first: bool  # the run's first recorded use of the version (a repeat overwrites it)


@dataclass(frozen=True)
class RemoteChangeWritten:
    change: RemoteChange  # only written when it is a new observation


@dataclass(frozen=True)
class LinkWritten:
    link: StoredLink  # made, or re-pointed (its `previous` set)


@dataclass(frozen=True)
class UnlinkWritten:
    unlink: Unlink


Written = VersionWritten | MoveWritten | UsageWritten | RemoteChangeWritten | LinkWritten | UnlinkWritten


def emitted(written: Written) -> Event | None:
    """The event a write makes, if any: a new version is committed, a committed one that turned
    deleted is deleted, every alias move is one, a run's first use of a version is one (a repeat
    is not), and every new observation of a remote reference is one. A change of tags or metadata
    makes none. Every link made, re-pointed or removed is one."""
    if isinstance(written, LinkWritten):
        return linked(written.link)
    if isinstance(written, UnlinkWritten):
        return unlinked(written.unlink)
    if isinstance(written, VersionWritten):
        if written.before is None:
            return committed(written.version)
        if written.before == "committed" and written.version.state == "deleted":
            return deleted(written.version)
        return None
    if isinstance(written, MoveWritten):
        return alias_moved(written.project, written.name, written.move, written.revision, written.digest)
    if isinstance(written, UsageWritten):
        return used(written.usage) if written.first else None
    return remote_changed(written.change)


def all_emitted(writes: list[Written]) -> list[Event]:
    return [event for event in map(emitted, writes) if event is not None]


# ---------------------------------------------------------------- the events


def committed(version: StoredVersion) -> Event:
    producer = version.producer
    return Event(
        COMMITTED,
        {
            "event_id": event_id(COMMITTED, version.project, version.name, version.version),
            "project": version.project,
            "name": version.name,
            "version": version.version,
            "type": version.type,
            "digest": version.digest,
            "size": version.size,
            "file_count": version.file_count,
            "aliases": sorted(version.aliases),
            "tags": list(version.tags),
            "run_id": producer.run_id if producer else None,
            "producer": (
                {
                    "run_id": producer.run_id,
                    "pipeline": producer.pipeline,
                    "step": producer.step,
                    "inputs": list(producer.inputs),  # name@version, resolved at commit
                }
                if producer
                else None
            ),
            "created_at": rfc3339(version.created_at),
            "created_by": version.created_by,
        },
        version.created_at,
    )


def deleted(version: StoredVersion) -> Event:
    at = version.deleted_at or version.created_at
    return Event(
        DELETED,
        {
            "event_id": event_id(DELETED, version.project, version.name, version.version),
            "project": version.project,
            "name": version.name,
            "version": version.version,
            "type": version.type,
            "digest": version.digest,
            "run_id": version.producer.run_id if version.producer else None,
            "deleted_at": rfc3339(at),
        },
        at,
    )


def alias_moved(project: str, name: str, move: AliasMove, revision: int, digest: str | None) -> Event:
    """A move of an alias; `version` is None when the alias was removed, `revision` is the artifact
    head's revision that the move made (one move of an alias per revision)."""
    return Event(
        ALIAS_MOVED,
        {
            "event_id": event_id(ALIAS_MOVED, project, name, move.alias, str(revision)),
            "project": project,
            "name": name,
            "alias": move.alias,
            "version": move.version,
            "previous_version": move.previous_version,
            "digest": digest,
            "at": rfc3339(move.at),
            "by": move.by,
        },
        move.at,
    )


def used(usage: UsageRecord) -> Event:
    return Event(
        USED,
        {
            "event_id": event_id(USED, usage.project, usage.name, usage.version, usage.run_id),
            "project": usage.project,
            "name": usage.name,
            "version": usage.version,
            "digest": usage.digest,
            "run_id": usage.run_id,
            "pipeline": usage.pipeline,
            "step": usage.step,
            "at": rfc3339(usage.at),
        },
        usage.at,
    )


def _target(target: Any) -> dict[str, Any] | None:
    return None if target is None else {"name": target.name, "version": target.version, "digest": target.digest}


def linked(link: StoredLink) -> Event:
    """A version linked another under a role (or re-pointed the role: `previous_target` is what it
    pointed at); `revision` of the artifact head names the change."""
    return Event(
        LINKED,
        {
            "event_id": event_id(LINKED, link.project, link.name, link.version, link.role, str(link.revision)),
            "project": link.project,
            "name": link.name,
            "version": link.version,
            "digest": link.digest,
            "role": link.role,
            "target": _target(link.target),
            "previous_target": _target(link.previous),
            "at": rfc3339(link.at),
            "by": link.by,
        },
        link.at,
    )


def unlinked(unlink: Unlink) -> Event:
    link = unlink.link
    return Event(
        UNLINKED,
        {
            "event_id": event_id(UNLINKED, link.project, link.name, link.version, link.role, str(unlink.revision)),
            "project": link.project,
            "name": link.name,
            "version": link.version,
            "digest": link.digest,
            "role": link.role,
            "target": _target(link.target),
            "at": rfc3339(unlink.at),
            "by": unlink.by,
        },
        unlink.at,
    )


def remote_changed(change: RemoteChange) -> Event:
    """A pinned remote reference that reads otherwise now (the janitor's re-check); one event per
    observation, however many runs see it."""

    def pin(entry: RemoteEntry | None) -> dict[str, Any] | None:
        return None if entry is None else {"size": entry.size, "etag": entry.etag, "version_id": entry.version_id}

    return Event(
        REMOTE_CHANGED,
        {
            "event_id": event_id(
                REMOTE_CHANGED,
                change.project,
                change.name,
                change.version,
                change.path_digest,
                change.fingerprint,
            ),
            "project": change.project,
            "name": change.name,
            "version": change.version,
            "path": change.path,
            "uri": change.uri,
            "state": change.state,
            "pinned": pin(change.pinned),
            "observed": pin(change.observed),
            "checked_at": rfc3339(change.checked_at),
        },
        change.checked_at,
    )
