"""The events of API.md: the published JSON Schemas, their examples, and what the builders make."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema
import pytest

from artreg import events
from artreg.model.wire import AliasMove, FileEntry, LinkTarget, RemoteEntry, UsageRecord
from artreg.registry.records import RemoteChange, StoredLink, StoredVersion, Unlink

T0 = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
SHA = "a" * 64


def schema(kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((resources.files("artreg.events") / "schemas" / f"{kind}.json").read_text())
    return loaded


def validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(kind), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def version(**fields: Any) -> StoredVersion:
    values: dict[str, Any] = {
        "project": "vision",
        "name": "resnet",
        "type": "model",
        "version": "3.0.0",
        "created_at": T0,
        "created_by": "arn:aws:sts::123456789012:assumed-role/train/job-7",
        "aliases": ["staging", "latest"],
        "tags": ["customer:1"],
        "metadata": {"framework": "pytorch", "big": "x" * 60_000},
        "producer": {"run_id": "run-42", "pipeline": "train", "step": "fit", "inputs": ["iris@2.0.0"]},
        "files": [FileEntry(path=f"f{i}", size=1, sha256=SHA) for i in range(1000)],
        "size": 1000,
        "file_count": 1000,
        "digest": "d" * 64,
        **fields,
    }
    return StoredVersion.model_validate(values)


def built() -> list[events.Event]:
    """One event of each kind, and the variants with nothing optional."""
    moved = AliasMove(alias="production", version="3.0.0", previous_version="2.0.0", at=T0, by="deployer")
    removed = AliasMove(alias="production", version=None, previous_version="3.0.0", at=T0)
    usage = UsageRecord(project="vision", name="resnet", version="3.0.0", run_id="run-43", at=T0, digest="d" * 64)
    return [
        events.committed(version()),
        events.committed(version(producer=None, aliases=[], tags=[], created_by=None)),
        events.used(usage),
        events.used(usage.model_copy(update={"pipeline": "eval", "step": "score"})),
        events.alias_moved("vision", "resnet", moved, 7, "d" * 64),
        events.alias_moved("vision", "resnet", removed, 8, None),
        events.deleted(version(state="deleted", deleted_at=T0)),
        events.remote_changed(remote_change("changed")),
        events.remote_changed(remote_change("vanished")),
        events.linked(link()),
        events.linked(link(previous=LinkTarget(name="iris", version="1.0.0", digest=SHA), by=None)),
        events.unlinked(Unlink(link=link(), at=T0, by="trainer", revision=9)),
        events.unlinked(Unlink(link=link(), at=T0, revision=10)),
    ]


def link(**fields: Any) -> StoredLink:
    values: dict[str, Any] = {
        "project": "vision",
        "name": "fraud",
        "version": "1.2.42",
        "digest": "d" * 64,
        "role": "checkpoints/epoch-3",
        "target": LinkTarget(name="ckpt", version="3.0.0", digest=SHA),
        "at": T0,
        "by": "trainer",
        "revision": 8,
        **fields,
    }
    return StoredLink.model_validate(values)


def remote_change(state: str) -> RemoteChange:
    pinned = RemoteEntry(path="raw/train.csv", uri="s3://data/train.csv", size=10, etag="e1", version_id="v1")
    observed = pinned.model_copy(update={"size": 12, "etag": "e2", "version_id": "v2"}) if state == "changed" else None
    return RemoteChange.model_validate(
        {
            "project": "vision",
            "name": "iris",
            "version": "1.0.0",
            "path": "raw/train.csv",
            "uri": pinned.uri,
            "state": state,
            "pinned": pinned,
            "observed": observed,
            "checked_at": T0,
        }
    )


@pytest.mark.parametrize("kind", events.DETAIL_TYPES)
def test_each_schema_is_valid_and_its_example_follows_it(kind: str) -> None:
    # Given the published schema of a detail type
    document = schema(kind)
    # Then it is a valid JSON Schema, for that detail type, with an example that it accepts
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["properties"]["detail-type"] == {"const": kind}
    assert len(document["examples"]) == 1
    validator(kind).validate(document["examples"][0])


def test_what_the_builders_make_follows_the_schemas_and_declares_every_field() -> None:
    for event in built():
        # When an event is delivered (here as the local server's webhook posts it)
        delivered = json.loads(json.dumps(event.envelope("artreg")))
        # Then its schema accepts it, and names every field of its detail
        validator(event.detail_type).validate(delivered)
        declared = schema(event.detail_type)["$defs"]["detail"]["properties"]
        assert set(event.detail) == set(declared), event.detail_type


def test_a_schema_refuses_a_detail_that_breaks_it() -> None:
    event = json.loads(json.dumps(events.committed(version()).envelope()))
    del event["detail"]["digest"]
    with pytest.raises(jsonschema.ValidationError):
        validator(events.COMMITTED).validate(event)
    event = json.loads(
        json.dumps(events.used(UsageRecord(project="v", name="n", version="1.0.0", run_id="r", at=T0)).envelope())
    )
    event["detail-type"] = events.COMMITTED
    with pytest.raises(jsonschema.ValidationError):
        validator(events.USED).validate(event)


def test_an_event_id_is_derived_from_what_the_event_is_about() -> None:
    # Given the same version read twice (a redelivered stream record), and another version
    first, again = events.committed(version()), events.committed(version(tags=["changed"]))
    other = events.committed(version(version="3.0.1"))
    # Then the first two have one id, the other its own, and a kind never shares an id with another kind
    assert first.event_id == again.event_id
    assert first.event_id != other.event_id
    kinds = {e.detail_type: e.event_id for e in built()}
    assert len(set(kinds.values())) == len(events.DETAIL_TYPES)
    assert first.event_id == events.event_id("ArtifactVersionCommitted", "vision", "resnet", "3.0.0")


def test_details_stay_small_whatever_the_version_holds() -> None:
    # Given a version with a thousand files and 60 KB of metadata, and the most inputs and tags there can be
    biggest = version(
        tags=[f"{i:03d}" + "t" * 124 for i in range(64)],
        producer={
            "run_id": "r" * 256,
            "pipeline": "p" * 256,
            "step": "s" * 256,
            "inputs": ["n" * 128 + "@1.0.0"] * 100,
        },
    )
    # Then its event carries neither manifest nor metadata, and is far under EventBridge's 256 KB
    detail = events.committed(biggest).detail_json()
    assert "files" not in json.loads(detail)
    assert "metadata" not in json.loads(detail)
    assert len(detail.encode()) < 64 * 1024
    assert len(events.committed(version()).detail_json()) < 1024


def test_times_are_rfc3339_utc() -> None:
    event = events.committed(version())
    assert event.detail["created_at"] == "2026-11-22T10:00:00.123456Z"
    assert event.envelope()["time"] == "2026-11-22T10:00:00Z"
