"""The registry table's items: their keys, and records to items and back, for the store and for the
stream's events alike (see `dynamodb` for the table's layout)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from artreg.model import manifest, versions
from artreg.model.manifest import Entry
from artreg.registry.keys import MovePosition
from artreg.registry.records import Head, StoredVersion, Upload, VersionDelta, latest_first

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


def history_prefix(alias: str) -> str:
    return f"H#{alias}#"


def history_sk(alias: str, position: MovePosition) -> str:
    return history_prefix(alias) + position.text()


def upload_key(project: str, upload_id: str, sk: str = "U") -> Item:
    return {"PK": s(f"U#{project}#{upload_id}"), "SK": s(sk)}


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
    rec = version.model_dump(mode="json", exclude={"aliases", "tags", "metadata", "state", "deleted_at"})
    attrs: Item = {
        "version": s(version.version),
        "rec": json_attr(rec),
        "tags": json_attr(version.tags),
        "meta": json_attr(version.metadata),
        "state": s(version.state),
    }
    if version.deleted_at:
        attrs["deleted_at"] = s(version.deleted_at.isoformat())
    if version.aliases:
        attrs["aliases"] = {"SS": sorted(version.aliases)}
    return attrs


def version_of(item: Item) -> StoredVersion:
    return StoredVersion.model_validate(
        {
            **json.loads(item["rec"]["S"]),
            "tags": json.loads(item["tags"]["S"]),
            "metadata": json.loads(item["meta"]["S"]),
            "state": item["state"]["S"],
            "deleted_at": item.get("deleted_at", {}).get("S"),
            "aliases": latest_first(item.get("aliases", {}).get("SS", [])),
        }
    )


def delta_update(delta: VersionDelta) -> tuple[str, Item, dict[str, str]]:
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
    if delta.deleted_at is not None:
        names["#state"] = "state"
        sets += ["#state = :deleted", "deleted_at = :deleted_at"]
        values[":deleted"] = s("deleted")
        values[":deleted_at"] = s(delta.deleted_at.isoformat())
    if sets:
        clauses.append("SET " + ", ".join(sets))
    # ADD and DELETE of one attribute cannot share an expression; the registry never asks for both
    assert not (delta.aliases_add and delta.aliases_remove)
    if delta.aliases_add:
        clauses.append("ADD aliases :add")
        values[":add"] = {"SS": sorted(delta.aliases_add)}
    if delta.aliases_remove:
        clauses.append("DELETE aliases :remove")
        values[":remove"] = {"SS": sorted(delta.aliases_remove)}
    return " ".join(clauses), values, names


def pack(entries: Sequence[Entry]) -> dict[str, bytes]:
    return {"B": manifest.pack(entries)}


def unpack(attr: dict[str, bytes]) -> list[Entry]:
    return manifest.unpack(attr["B"])
