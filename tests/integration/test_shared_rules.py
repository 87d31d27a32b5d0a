"""Rules that both back ends follow because there is one copy of each: which writes make an event,
what a cursor may carry, the order of a version's aliases, the time key, what a bare name means,
and the limits a store declares. Each test runs on DynamoDB (moto) and on SQLite."""

from __future__ import annotations

import base64
import json
import random
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.api.app import build_app
from artreg.aws.dynamodb_stream import event_of_stream_record
from artreg.events import Event
from artreg.model.errors import Conflict, TooLarge
from artreg.model.wire import FileEntry, MoveAlias, PatchVersion, StartUpload, Usage
from artreg.registry.lineage import LineageRecorder
from artreg.registry.records import LineageEdge, StoreLimits
from tests.conftest import TABLE, Backend, api_event, aws_backend, local_backend
from tests.support.lambda_context import LambdaContext
from tests.support.streams import TableStream

P, N = "vision", "resnet"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Clock:
    """A clock both back ends share in a test, moved by hand."""

    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


@dataclass
class Side:
    """One back end, with what its changes emitted since the last `emitted()`."""

    backend: Backend
    emitted: Callable[[], list[Event]]

    @property
    def registry(self) -> Any:
        return self.backend.registry

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        app = build_app(self.registry, caller=lambda _: None)
        result = app.resolve(api_event(method, path, **kwargs), LambdaContext())
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


@pytest.fixture(params=["aws", "local"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "local":
        backend = local_backend(tmp_path)
        seen: set[int] = set()

        def from_outbox() -> list[Event]:
            rows = backend.registry.store.outbox_pending("test", 1000)
            new = [event for row, event in rows if row not in seen]
            seen.update(row for row, _ in rows)
            return new

        yield Side(backend, from_outbox)
        return
    aws = request.getfixturevalue("aws")
    backend = aws_backend(aws)
    stream = TableStream(aws["dynamodb"], TABLE)
    with stream.capture() as records:

        def from_stream() -> list[Event]:
            stream.step()
            made = [e for e in map(event_of_stream_record, records) if e is not None]
            records.clear()
            return made

        yield Side(backend, from_stream)


def log(side: Side, name: str, data: bytes, **request: Any) -> Any:
    return side.backend.log(P, name, {"data.bin": data}, **request).record


def cursor_of(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


# ---------------------------------------------------------------- which writes make an event


def test_a_retag_and_a_repeated_use_make_no_event_and_a_first_use_one(side: Side) -> None:
    # Given a committed version, its events read
    log(side, N, b"weights")
    assert sorted(e.detail_type for e in side.emitted()) == ["AliasMoved", "ArtifactVersionCommitted"]
    # When its tags and metadata change
    side.registry.patch_version(P, N, "1.0.0", PatchVersion(tags_add=["gold"], metadata={"acc": 0.9}))
    # Then that makes no event
    assert side.emitted() == []
    # And a run's first use of it makes one, its second none
    side.registry.record_usage(P, N, "1.0.0", Usage(run_id="eval-1"))
    assert [e.detail_type for e in side.emitted()] == ["ArtifactVersionUsed"]
    side.registry.record_usage(P, N, "1.0.0", Usage(run_id="eval-1"))
    assert side.emitted() == []
    # And deleting it makes the deletion and the move of `latest` away from it
    log(side, N, b"weights 2")
    side.emitted()
    side.registry.delete_version(P, N, "2.0.0")
    assert sorted(e.detail_type for e in side.emitted()) == ["AliasMoved", "ArtifactVersionDeleted"]


# ---------------------------------------------------------------- cursors

FORGED = {
    "not base64 JSON": "!!!not-a-cursor",
    "a number where a name goes": cursor_of({"after": 5}),
    "a name longer than any name": cursor_of({"after": "a" * 1200}),
    "a number where a position goes": cursor_of({"before": 5}),
    "a position of no shape this API makes": cursor_of({"before": "H#production#yesterday"}),
    "a negative offset": cursor_of({"offset": -1}),
    "a key of another listing": cursor_of({"offset": 1, "after": "x"}),
    "a list": cursor_of(["after", "x"]),
}
LISTINGS = {
    "artifacts": f"/v1/projects/{P}/artifacts",
    "versions": f"/v1/projects/{P}/artifacts/{N}/versions",
    "files": f"/v1/projects/{P}/artifacts/{N}/versions/1.0.0/files",
    "download": f"/v1/projects/{P}/artifacts/{N}/versions/1.0.0/download",
    "alias history": f"/v1/projects/{P}/artifacts/{N}/aliases/latest/history",
    "lineage": f"/v1/projects/{P}/artifacts/{N}/versions/1.0.0/lineage",
    "run": f"/v1/projects/{P}/runs/train-1",
}


def test_a_forged_cursor_is_400_on_every_listing(side: Side) -> None:
    # Given an artifact with a version made by a run
    log(side, N, b"weights", producer={"run_id": "train-1"})
    for listing, path in LISTINGS.items():
        # When a listing is asked for a page after a cursor it did not hand out
        for forged, cursor in FORGED.items():
            status, body = side.call("GET", path, query={"cursor": cursor})
            # Then it is a 400 invalid_request about the cursor, never a 500
            assert (status, body["error"]["code"]) == (400, "invalid_request"), (listing, forged, body)
            assert body["error"]["details"]["field"] == "cursor", (listing, forged)


def test_the_cursors_a_listing_hands_out_still_page_through_it(side: Side) -> None:
    # Given three moves of an alias and a run that used three versions
    for data in (b"a", b"b", b"c"):
        version = log(side, N, data).version
        side.registry.move_alias(P, N, "production", MoveAlias(version=version))
        side.registry.record_usage(P, N, version, Usage(run_id="eval-1"))
    recorder = LineageRecorder(side.registry.store)  # as the lineage consumer does, from the events
    for event in side.emitted():
        recorder.record(event.detail_type, event.detail)
    path = f"/v1/projects/{P}/artifacts/{N}/aliases/production/history"

    def pages(path: str, key: str) -> list[Any]:
        seen, cursor = [], None
        while True:
            status, body = side.call("GET", path, query={"limit": "1", **({"cursor": cursor} if cursor else {})})
            assert status == 200, body
            seen += body[key]
            if not (cursor := body["next_cursor"]):
                return seen

    # When each is read a page of one at a time
    moves = pages(path, "items")
    used = pages(f"/v1/projects/{P}/runs/eval-1", "used")
    # Then every item is read once, in order
    assert [m["version"] for m in moves] == ["3.0.0", "2.0.0", "1.0.0"]
    assert used == [f"{N}@1.0.0", f"{N}@2.0.0", f"{N}@3.0.0"]


def test_both_back_ends_hand_out_the_same_positions(aws: dict[str, Any], tmp_path: Path) -> None:
    # Given the same changes at the same times on DynamoDB and on SQLite
    sides = [aws_backend(aws), local_backend(tmp_path)]
    answers = []
    for backend in sides:
        clock = Clock()
        backend.registry.clock = clock
        for data in (b"a", b"b", b"c"):
            clock.at += timedelta(minutes=1)
            version = backend.log(P, N, {"data.bin": data}).record.version
            backend.registry.move_alias(P, N, "production", MoveAlias(version=version))
            backend.registry.store.put_edge(
                LineageEdge(project=P, run_id="train-1", kind="produced", name=N, version=version, at=clock.at)
            )
        history = backend.registry.alias_history(P, N, "production", limit=1)
        run = backend.registry.run(P, "train-1", limit=1)
        versions = backend.registry.list_versions(P, N, limit=1)
        answers.append((history.next_cursor, run.next_cursor, versions.next_cursor))
    # Then the cursors of each listing, which carry the store's positions, are the same
    assert answers[0] == answers[1]
    assert all(answers[0])


# ---------------------------------------------------------------- aliases, time, names


def test_a_versions_aliases_read_latest_first_then_by_name(side: Side) -> None:
    # Given a version with aliases given in no order
    log(side, N, b"weights", aliases=["zeta", "alpha", "mid"])
    # When it is read by its number, through an alias, or listed
    by_number = side.registry.resolve(P, N, "1.0.0")
    by_alias = side.registry.resolve(P, N, "zeta")
    listed = side.registry.list_versions(P, N).items[0]
    # Then its aliases are `latest` first, then by name, every way
    for read in (by_number, by_alias, listed):
        assert read.aliases == ["latest", "alpha", "mid", "zeta"]


def test_a_time_without_a_zone_is_utc(side: Side, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a machine whose local time is not UTC, and `stable` moved from 1.0.0 to 2.0.0 at 11:00 UTC
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        clock = Clock()
        side.registry.clock = clock
        log(side, N, b"a", aliases=["stable"])
        clock.at = T0 + timedelta(hours=1)
        log(side, N, b"b", aliases=["stable"])
        # When it is asked where the alias stood at 10:30 and at 11:30 without a zone
        before = side.registry.resolve(P, N, "stable", at=datetime(2026, 11, 22, 10, 30))
        after = side.registry.resolve(P, N, "stable", at=datetime(2026, 11, 22, 11, 30))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    # Then those are UTC times: 1.0.0, then 2.0.0
    assert (before.version, after.version) == ("1.0.0", "2.0.0")


def test_a_bare_name_means_latest(side: Side) -> None:
    # Given two versions of a dataset
    log(side, "iris", b"v1", type="dataset")
    log(side, "iris", b"v2", type="dataset")
    # When a version is resolved by its bare name, and a run declares it as an input by its bare name
    status, body = side.call("GET", f"/v1/resolve/{P}/iris")
    made = log(side, N, b"weights", producer={"run_id": "train-1", "inputs": ["iris"]})
    # Then both mean the latest version
    assert (status, body["version"]) == (200, "2.0.0")
    assert made.producer is not None
    assert made.producer.inputs == ["iris@2.0.0"]


# ---------------------------------------------------------------- limits


def test_a_batch_over_the_stores_limit_is_refused_before_anything_is_written(side: Side) -> None:
    # Given 1,000 files whose long random paths compress to more than a store keeps of one request
    pick = random.Random(7)
    files = [
        FileEntry(path="".join(pick.choices(string.ascii_letters, k=1000)), size=1, sha256=f"{i:064x}")
        for i in range(1000)
    ]
    # When an upload is started with them
    with pytest.raises(TooLarge) as refused:
        side.registry.start_upload(P, N, StartUpload(files=files))
    # Then it is too large, on either back end, and nothing is stored
    assert refused.value.details == {"limit": StoreLimits().batch_bytes}
    registry = side.registry
    assert list(registry.store.pending_uploads(P, registry.clock.now(), registry.policy.upload_ttl)) == []
    assert registry.store.get_head(P, N) is None


def test_the_registry_keeps_to_the_limits_its_store_declares(side: Side) -> None:
    # Given a store that declares it holds at most three aliases an artifact (`latest` included)
    side.registry.store.limits = StoreLimits(max_aliases=3)
    log(side, N, b"weights", aliases=["staging"])
    side.registry.move_alias(P, N, "production", MoveAlias(version="1.0.0"))
    # When a fourth is asked for
    with pytest.raises(Conflict) as refused:
        side.registry.move_alias(P, N, "canary", MoveAlias(version="1.0.0"))
    # Then it is refused, and the artifact keeps its three
    assert refused.value.code == "alias_conflict"
    assert set(side.registry.get_artifact(P, N).aliases) == {"staging", "production"}


def test_a_blob_too_large_for_2000_parts_of_the_preferred_size_gets_larger_parts(side: Side) -> None:
    # Given a store that prefers 5 MiB parts, and a blob of 1 TiB (over 200,000 such parts)
    size = 1024**4
    # When it is asked where to upload the blob
    [target] = side.registry.blobs.upload_targets(P, [("a" * 64, size)])
    # Then it is cut into the fewest whole MiB that keep within 2,000 parts (their URLs fit one Lambda
    # answer), on either back end
    assert target.multipart is not None
    assert target.multipart.part_size == 525 * 1024**2
    assert len(target.multipart.parts) == 1_998  # 1 TiB / 525 MiB, the last part short
