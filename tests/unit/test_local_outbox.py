"""The local server's outbox: each consumer at its own position, at least once and in order, a failing
consumer retried without holding up the others; and the webhook that posts events as EventBridge
delivers them."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from artreg import events
from artreg.events import Event
from artreg.local.outbox import Outbox, Webhook, WebhookFailed
from artreg.local.sqlite_store import SqliteStore
from artreg.model.errors import Invalid
from artreg.model.wire import UsageRecord

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "registry.db")


def use(store: SqliteStore, run_id: str) -> None:
    """One write, one event."""
    store.put_usage(UsageRecord(project="vision", name="resnet", version="1.0.0", run_id=run_id, at=T0))


class Flaky:
    """Takes events, failing once on the event of `fail_on`."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.taken: list[str] = []

    def __call__(self, event: Event) -> None:
        if event.detail["run_id"] == self.fail_on:
            self.fail_on = None
            raise RuntimeError("consumer down")
        self.taken.append(event.detail["run_id"])


def test_each_consumer_gets_every_event_once_in_order_from_its_own_position(store: SqliteStore) -> None:
    # Given three events and two consumers, one of which fails on the second event once
    for run in ("r1", "r2", "r3"):
        use(store, run)
    steady, flaky = Flaky(), Flaky(fail_on="r2")
    outbox = Outbox(store, {"steady": steady, "flaky": flaky})
    # When the outbox is drained, once and then again
    outbox.drain_once()
    assert (steady.taken, flaky.taken) == (["r1", "r2", "r3"], ["r1"])
    outbox._retry_at.clear()  # the backoff has passed
    outbox.drain_once()
    # Then the failing one got the rest from where it stopped, and no one got anything twice
    assert (steady.taken, flaky.taken) == (["r1", "r2", "r3"], ["r1", "r2", "r3"])
    # And later writes go to both, across a new Outbox on the same file (a restart)
    use(store, "r4")
    Outbox(store, {"steady": steady, "flaky": flaky}).drain_once()
    assert steady.taken[-1] == flaky.taken[-1] == "r4"


def test_a_new_only_consumer_starts_at_the_end(store: SqliteStore) -> None:
    use(store, "before")
    hook = Flaky()
    outbox = Outbox(store, {"hook": hook}, new_only=frozenset({"hook"}))
    use(store, "after")
    outbox.drain_once()
    assert hook.taken == ["after"]


def test_catching_up_delivers_now_and_survives_a_failure(store: SqliteStore) -> None:
    use(store, "r1")
    lineage = Flaky(fail_on="r1")
    outbox = Outbox(store, {"lineage": lineage})
    outbox.catch_up("lineage")  # fails, logged: the query answers what is recorded
    outbox.catch_up("lineage")
    assert lineage.taken == ["r1"]


def test_the_background_thread_delivers_soon_after_a_write(store: SqliteStore) -> None:
    seen = threading.Event()
    outbox = Outbox(store, {"c": lambda event: seen.set()}, interval_s=30)
    outbox.start()
    try:
        use(store, "r1")
        outbox.wake()
        assert seen.wait(5)
    finally:
        outbox.stop()


class Poster:
    """Answers each post with the next of `answers` (a status, or an exception to raise)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, body: bytes, timeout_s: float) -> int:
        self.posts.append((url, json.loads(body)))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def event() -> Event:
    usage = UsageRecord(project="vision", name="resnet", version="1.0.0", run_id="r1", at=T0, digest="d" * 64)
    return events.used(usage)


def test_the_webhook_posts_the_eventbridge_shape_and_retries_until_2xx() -> None:
    # Given a webhook whose endpoint is down once, then answers 503, then 204
    poster = Poster(ConnectionRefusedError("refused"), 503, 204)
    sleeps: list[float] = []
    hook = Webhook("http://127.0.0.1:9/hook", "my-source", post=poster, sleep=sleeps.append)
    # When an event goes
    hook(event())
    # Then it was posted three times, the same body each time, after a backoff each
    assert len(poster.posts) == 3
    assert len(sleeps) == 2
    (url, body), *again = poster.posts
    assert url == "http://127.0.0.1:9/hook"
    assert all(b == body for _, b in again)
    # And the body is the event as EventBridge delivers it, its id the event_id, as its schema says
    assert (body["id"], body["source"], body["detail-type"]) == (event().event_id, "my-source", "ArtifactVersionUsed")
    document = json.loads((resources.files("artreg.events") / "schemas" / "ArtifactVersionUsed.json").read_text())
    jsonschema.Draft202012Validator(document).validate(body)


def test_a_webhook_that_never_answers_2xx_raises_and_only_http_urls_are_taken() -> None:
    hook = Webhook("https://example.invalid/hook", post=Poster(500, 500, 500), sleep=lambda _: None, attempts=3)
    with pytest.raises(WebhookFailed, match="HTTP 500"):
        hook(event())
    with pytest.raises(Invalid):
        Webhook("file:///etc/passwd")
