"""Publishing the registry's events on its EventBridge bus.

PutEvents takes at most 10 entries and 256 KB a call, and answers 200 even when some entries failed
(`FailedEntryCount`, an `ErrorCode` on each failed entry): those entries, and only those, are sent
again with jittered backoff. Entries that still fail raise `PublishFailed`, so that the stream batch
that carried them is retried (and in the end lands in the on-failure destination): never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from artreg.aws.errors import translate
from artreg.backoff import jittered
from artreg.events import Event

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024


class PublishFailed(Exception):
    """Events that EventBridge did not take after every attempt."""

    def __init__(self, failed: Sequence[tuple[Event, str]]):
        codes = sorted({code for _, code in failed})
        super().__init__(f"{len(failed)} event(s) not published after retries: {', '.join(codes)}")
        self.failed = list(failed)


def entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """The size PutEvents counts for an entry (AWS's documented calculation)."""
    size = 14  # Time
    for text in (entry.get("Source", ""), entry.get("DetailType", ""), entry.get("Detail", "")):
        size += len(text.encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", []))


class EventBridgePublisher:
    def __init__(
        self,
        client: EventBridgeClient,
        bus_name: str,
        source: str,
        *,
        max_attempts: int = 5,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[int], None] | None = None,
    ):
        self.client = client
        self.bus_name = bus_name
        self.source = source
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self._on_retry = on_retry

    def entry(self, event: Event) -> PutEventsRequestEntryTypeDef:
        return {
            "EventBusName": self.bus_name,
            "Source": self.source,
            "DetailType": event.detail_type,
            "Detail": event.detail_json(),
            "Time": event.time,
            "Resources": [],
        }

    def publish(self, events: Sequence[Event]) -> None:
        """Puts every event on the bus, or raises PublishFailed with those that did not go."""
        failed: list[tuple[Event, str]] = []
        for batch in self._batches(events):
            failed += self._put(batch)
        if failed:
            raise PublishFailed(failed)

    def _batches(self, events: Sequence[Event]) -> Iterator[list[Event]]:
        batch: list[Event] = []
        size = 0
        for event in events:
            this = entry_size(self.entry(event))
            if this > MAX_REQUEST_BYTES:  # the builders keep details small: a defect, never dropped quietly
                raise ValueError(f"event {event.event_id} is {this} bytes, over PutEvents' {MAX_REQUEST_BYTES}")
            if batch and (len(batch) == MAX_ENTRIES or size + this > MAX_REQUEST_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(event)
            size += this
        if batch:
            yield batch

    def _put(self, batch: list[Event]) -> list[tuple[Event, str]]:
        """Puts one batch, then again only its failed entries, up to max_attempts; answers what still failed."""
        pending = batch
        codes: list[str] = []
        for attempt in range(self.max_attempts):
            if attempt:
                if self._on_retry:
                    self._on_retry(len(pending))
                self._sleep(jittered(attempt, self.backoff_base_s, self.backoff_cap_s, floor=0.5))
            try:
                answer = self.client.put_events(Entries=[self.entry(e) for e in pending])
            except ClientError as error:
                raise translate(error) from error
            if not answer.get("FailedEntryCount"):
                return []
            results = answer["Entries"]
            failed = [
                (e, r.get("ErrorCode") or "") for e, r in zip(pending, results, strict=True) if r.get("ErrorCode")
            ]
            pending, codes = [e for e, _ in failed], [c for _, c in failed]
        return list(zip(pending, codes, strict=True))
