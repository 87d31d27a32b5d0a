"""The registry table's items: their keys, and records to items and back, for the store and for the
stream's events alike (see `dynamodb` for the table's layout)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from artreg.model import manifest, versions
from artreg.model.manifest import Entry
from artreg.registry import keys
from artreg.registry.keys import MovePosition
from artreg.registry.records import Head, StoredLink, StoredVersion, Unlink, Upload, VersionDelta, latest_first

Item = dict[str, Any]
CURSOR_KEY: Item = {"PK": {"S": "X#cursor"}, "SK": {"S": "X"}}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def json_attr(value: Any) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"), default=str)}


# ---------------------------------------------------------------- keys


def head_key(project: str, name: str) -> Item:
    return {"PK": s(f"P#{project}"), "SK": s(f"A#{name}")}


def artifact_pk(project: str, name: str) -> dict[str, str]:
    return s(f"A#{project}#{name}")


def version_key(project: str, name: str, version: str) -> Item:
    return {"PK": artifact_pk(project, name), "SK": s(f"V#{versions.sort_key(version)}")}


def alias_key(project: str, name: str, alias: str) -> Item:
    return {"PK": artifact_pk(project, name), "SK": s(f"L#{alias}")}


def links_prefix(version: str) -> str:
    return f"K#{versions.sort_key(version)}#"


def link_key(project: str, name: str, version: str, role: str) -> Item:
    """A version's link: under its artifact, by version then role, so that its links are one Query."""
    return {"PK": artifact_pk(project, name), "SK": s(links_prefix(version) + role)}


def linked_by_prefix(version: str) -> str:
    return f"B#{versions.sort_key(version)}#"


def reverse_key(link: StoredLink, target_name: str, target_version: str) -> Item:
    """The same link under its target's artifact, so that who links to a version is one Query."""
    return {
        "PK": artifact_pk(link.project, target_name),
        "SK": s(linked_by_prefix(target_version) + keys.linked_by_position(link)),
    }


def link_item(link: StoredLink) -> Item:
    return {**link_key(link.project, link.name, link.version, link.role), "link": s(link.model_dump_json())}


def reverse_item(link: StoredLink) -> Item:
    return {**reverse_key(link, link.target.name, link.target.version), "link": s(link.model_dump_json())}


def unlink_item(unlink: Unlink) -> Item:
    """The record of a removed link, whose INSERT on the stream is its event."""
    link = unlink.link
    sk = f"J#{versions.sort_key(link.version)}#{link.role}#{unlink.revision:012d}"
    return {"PK": artifact_pk(link.project, link.name), "SK": s(sk), "unlink": s(unlink.model_dump_json())}


def history_prefix(alias: str) -> str:
    return f"H#{alias}#"


def history_sk(alias: str, position: MovePosition) -> str:
    return history_prefix(alias) + position.text()


def upload_key(project: str, upload_id: str, sk: str = "U") -> Item:
    return {"PK": s(f"U#{project}#{upload_id}"), "SK": s(sk)}


def hour_of(at: datetime) -> datetime:
    """The hour of the expiry index's partition that holds `at`."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def expiry_pk(hour: datetime) -> dict[str, str]:
    return s("X#" + hour.astimezone(UTC).strftime("%Y-%m-%dT%H"))


def expiry_key(upload: Upload) -> Item:
    return {"PK": expiry_pk(upload.expires_at), "SK": s(f"{upload.project}#{upload.upload_id}")}


# ---------------------------------------------------------------- items <-> records


def head_item(head: Head) -> Item:
    return {
        **head_key(head.project, head.name),
        "rev": n(head.revision),
        "head": s(head.model_dump_json(exclude={"revision"})),
    }


def head_of(item: Item) -> Head:
    return Head.model_validate({**json.loads(item["head"]["S"]), "revision": int(item["rev"]["N"])})


def version_attrs(version: StoredVersion) -> Item:
    mutable = {"aliases", "tags", "metadata", "state", "deleted_at", "links", "link_count", "links_truncated"}
    rec = version.model_dump(mode="json", exclude=mutable)
    attrs: Item = {
        "version": s(version.version),
        "rec": json_attr(rec),
        "tags": json_attr(version.tags),
        "meta": json_attr(version.metadata),
        "state": s(version.state),
        "links": links_attr(version.links, version.link_count, version.links_truncated),
    }
    if version.deleted_at:
        attrs["deleted_at"] = s(version.deleted_at.isoformat())
    if version.aliases:
        attrs["aliases"] = {"SS": sorted(version.aliases)}
    return attrs


def links_attr(links: Sequence[Any], count: int | None, truncated: bool | None) -> dict[str, str]:
    """A version's inline links, their count and truncation: one attribute, set whole by a change."""
    items = [link.model_dump(mode="json") for link in links]
    return json_attr({"items": items, "count": count or 0, "truncated": bool(truncated)})


def version_of(item: Item) -> StoredVersion:
    links = json.loads(item["links"]["S"]) if "links" in item else {"items": [], "count": 0, "truncated": False}
    return StoredVersion.model_validate(
        {
            **json.loads(item["rec"]["S"]),
            "links": links["items"],
            "link_count": links["count"],
            "links_truncated": links["truncated"],
            "tags": json.loads(item["tags"]["S"]),
            "metadata": json.loads(item["meta"]["S"]),
            "state": item["state"]["S"],
            "deleted_at": item.get("deleted_at", {}).get("S"),
            "aliases": latest_first(item.get("aliases", {}).get("SS", [])),
        }
    )


def delta_update(delta: VersionDelta, linked_by: int = 0) -> tuple[str, Item, dict[str, str]]:
    """The update of a version item (and its alias copies); `linked_by` adds to the version item's count
    of links to it, when the change links to that version too (one action per item in a transaction)."""
    sets: list[str] = []
    clauses: list[str] = []
    values: Item = {}
    names: dict[str, str] = {}
    if delta.tags is not None:
        sets.append("tags = :tags")
        values[":tags"] = json_attr(delta.tags)
    if delta.metadata is not None:
        sets.append("meta = :meta")
        values[":meta"] = json_attr(delta.metadata)
    if delta.links is not None:
        sets.append("links = :links")
        values[":links"] = links_attr(delta.links, delta.link_count, delta.links_truncated)
    if delta.deleted_at is not None:
        names["#state"] = "state"
        sets += ["#state = :deleted", "deleted_at = :deleted_at"]
        values[":deleted"] = s("deleted")
        values[":deleted_at"] = s(delta.deleted_at.isoformat())
    if sets:
        clauses.append("SET " + ", ".join(sets))
    # ADD and DELETE of one attribute cannot share an expression; the registry never asks for both
    assert not (delta.aliases_add and delta.aliases_remove)
    adds = []
    if delta.aliases_add:
        adds.append("aliases :add")
        values[":add"] = {"SS": sorted(delta.aliases_add)}
    if linked_by:
        adds.append("linked_by :linked_by")
        values[":linked_by"] = n(linked_by)
    if adds:
        clauses.append("ADD " + ", ".join(adds))
    if delta.aliases_remove:
        clauses.append("DELETE aliases :remove")
        values[":remove"] = {"SS": sorted(delta.aliases_remove)}
    return " ".join(clauses), values, names


def pack(entries: Sequence[Entry]) -> dict[str, bytes]:
    return {"B": manifest.pack(entries)}


def unpack(attr: dict[str, bytes]) -> list[Entry]:
    return manifest.unpack(attr["B"])
