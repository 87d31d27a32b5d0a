"""The registry table's stream, the source of the registry's events on AWS: a stream record says
what was written, as the SQLite store says it as it writes, and `events.emitted` decides the event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from artreg import events
from artreg.aws import dynamodb_codec as codec
from artreg.events import Event
from artreg.model.wire import AliasMove, UsageRecord
from artreg.registry.records import RemoteChange, StoredLink, Unlink


def written_of_stream_record(record: Mapping[str, Any]) -> events.Written | None:
    """What one record of the table's stream (as Lambda hands it over, NEW_AND_OLD_IMAGES) wrote, for
    the items that may make an event: versions, alias moves, usages and remote changes."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    pk, sk = keys.get("PK", {}).get("S", ""), keys.get("SK", {}).get("S", "")
    new, old = change.get("NewImage"), change.get("OldImage")
    name = record.get("eventName")
    if not new or name not in ("INSERT", "MODIFY"):
        return None
    if pk.startswith("C#"):
        return events.RemoteChangeWritten(RemoteChange.model_validate_json(new["change"]["S"]))
    if not pk.startswith("A#"):
        return None
    if sk.startswith("V#"):
        before = (old or {}).get("state", {}).get("S") if name == "MODIFY" else None
        if name == "MODIFY" and before not in ("committed", "deleted"):
            return None
        return events.VersionWritten(codec.version_of(new), before)
    if sk.startswith("K#"):  # a link made (INSERT) or re-pointed (MODIFY)
        return events.LinkWritten(StoredLink.model_validate_json(new["link"]["S"]))
    if sk.startswith("J#") and name == "INSERT":
        return events.UnlinkWritten(Unlink.model_validate_json(new["unlink"]["S"]))
    if sk.startswith("U#"):
        return events.UsageWritten(UsageRecord.model_validate_json(new["usage"]["S"]), first=name == "INSERT")
    if sk.startswith("H#") and name == "INSERT":
        _, project, artifact = pk.split("#", 2)
        revision = int(sk.rsplit("#", 1)[1])
        move = AliasMove.model_validate_json(new["move"]["S"])
        return events.MoveWritten(project, artifact, move, revision, new.get("digest", {}).get("S"))
    return None


def event_of_stream_record(record: Mapping[str, Any]) -> Event | None:
    """The event of one stream record, or None for a write that makes none. The publisher's filter
    criteria in template.yaml let through the same."""
    written = written_of_stream_record(record)
    return events.emitted(written) if written is not None else None
