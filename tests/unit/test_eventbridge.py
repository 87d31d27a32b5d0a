"""The EventBridge publisher with a fake client: batches of at most 10 entries and 256 KB, failed entries
(PutEvents answers 200 with FailedEntryCount) sent again alone, and a failure that stays raised."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from artreg.aws.eventbridge import MAX_REQUEST_BYTES, EventBridgePublisher, PublishFailed, entry_size
from artreg.events import Event
from tests.support.fake_events import FakeEvents

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def event(i: int, pad: int = 0) -> Event:
    return Event("ArtifactVersionUsed", {"event_id": f"{i:064x}", "pad": "x" * pad}, T0)


def publisher(client: FakeEvents, sleeps: list[float] | None = None) -> EventBridgePublisher:
    return EventBridgePublisher(
        client,  # type: ignore[arg-type]
        "artreg-bus",
        "artreg",
        max_attempts=4,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_events_go_in_batches_of_at_most_ten() -> None:
    # Given 23 events
    client = FakeEvents()
    # When they are published
    publisher(client).publish([event(i) for i in range(23)])
    # Then three calls carried them, 10, 10 and 3, in order, each entry on the bus with its source and time
    assert [len(c) for c in client.calls] == [10, 10, 3]
    assert [i for call in range(3) for i in client.ids(call)] == [f"{i:064x}" for i in range(23)]
    first = client.calls[0][0]
    assert (first["EventBusName"], first["Source"], first["DetailType"], first["Time"]) == (
        "artreg-bus",
        "artreg",
        "ArtifactVersionUsed",
        T0,
    )


def test_a_batch_also_stays_under_256_kb() -> None:
    # Given events of 60 KB each
    client = FakeEvents()
    big = [event(i, pad=60_000) for i in range(9)]
    # When they are published
    publisher(client).publish(big)
    # Then no call carries more than 256 KB (four of them at most)
    assert [len(c) for c in client.calls] == [4, 4, 1]
    assert all(sum(entry_size(e) for e in call) <= MAX_REQUEST_BYTES for call in client.calls)  # type: ignore[arg-type]


def test_only_the_failed_entries_are_sent_again() -> None:
    # Given a bus that throttles two entries of the first call
    flaky = {f"{2:064x}", f"{5:064x}"}
    client = FakeEvents(fail=lambda call, event_id: call == 0 and event_id in flaky)
    sleeps: list[float] = []
    # When seven events are published
    publisher(client, sleeps).publish([event(i) for i in range(7)])
    # Then the second call carries those two entries only, after a backoff, and nothing is left
    assert [len(c) for c in client.calls] == [7, 2]
    assert client.ids(1) == [f"{2:064x}", f"{5:064x}"]
    assert client.calls[1] == [client.calls[0][2], client.calls[0][5]]
    assert len(sleeps) == 1
    assert sleeps[0] > 0


def test_entries_that_keep_failing_raise_with_the_events() -> None:
    # Given a bus that never takes one event
    stuck = f"{3:064x}"
    client = FakeEvents(fail=lambda call, event_id: event_id == stuck)
    # When events are published
    with pytest.raises(PublishFailed) as failed:
        publisher(client).publish([event(i) for i in range(5)])
    # Then it was tried max_attempts times, alone after the first, and the error names it: nothing is dropped quietly
    assert [len(c) for c in client.calls] == [5, 1, 1, 1]
    assert [e.event_id for e, _ in failed.value.failed] == [stuck]
    assert "ThrottlingException" in str(failed.value)


def test_nothing_to_publish_calls_nothing() -> None:
    client = FakeEvents()
    publisher(client).publish([])
    assert client.calls == []
