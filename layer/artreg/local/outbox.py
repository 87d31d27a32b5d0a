"""The embedded default's outbox, drained in process: what the DynamoDB stream, the publisher, the bus
and the lineage queue do on AWS.

Each consumer (the lineage recorder, and a webhook when `artreg server --webhook URL` is given) reads
the events after its own position in the outbox, oldest first, and its position moves past an event
only once the consumer has taken it: delivery is at least once, in order, across restarts. A
background thread drains every consumer shortly after each write; a consumer that fails is retried
with backoff and holds up no other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping

from artreg.backoff import jittered
from artreg.events import DEFAULT_SOURCE, Event
from artreg.local.sqlite_store import SqliteStore
from artreg.model.errors import Invalid

log = logging.getLogger("artreg.outbox")
Consumer = Callable[[Event], object]


class Outbox:
    def __init__(
        self,
        store: SqliteStore,
        consumers: Mapping[str, Consumer],
        *,
        new_only: frozenset[str] = frozenset(),
        interval_s: float = 1.0,
        batch: int = 100,
        retry_cap_s: float = 60.0,
    ):
        """`new_only`: consumers that, the first time they are seen, start at the end of the outbox
        instead of its beginning (a webhook gets the events made after it was set up)."""
        self.store = store
        self.consumers = dict(consumers)
        self.interval_s = interval_s
        self.batch = batch
        self.retry_cap_s = retry_cap_s
        self._locks = {name: threading.Lock() for name in self.consumers}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for name in new_only & set(self.consumers):
            store.outbox_start_at_end(name)

    def deliver(self, name: str) -> int:
        """Hands consumer `name` every pending event, oldest first, moving its position past each one it
        takes; answers how many it took. Raises what the consumer raised."""
        consumer = self.consumers[name]
        taken = 0
        with self._locks[name]:
            while True:
                pending = self.store.outbox_pending(name, self.batch)
                for row_id, event in pending:
                    consumer(event)
                    self.store.outbox_delivered(name, row_id)
                    taken += 1
                if len(pending) < self.batch:
                    return taken

    def catch_up(self, name: str) -> None:
        """Delivers what is pending to `name` now, in the caller's thread (a lineage query first records
        every write made before it); a failure is logged and left to the background thread."""
        try:
            self.deliver(name)
        except Exception:
            log.warning("outbox consumer %s failed; it will be retried", name, exc_info=True)

    def wake(self) -> None:
        """Something was written: drain soon."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="artreg-outbox", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def drain_once(self) -> None:
        """One pass over the consumers that are not backing off after a failure."""
        for name in self.consumers:
            if time.monotonic() < self._retry_at.get(name, 0.0):
                continue
            try:
                self.deliver(name)
                self._failures[name] = 0
            except Exception:
                failures = self._failures.get(name, 0) + 1
                self._failures[name] = failures
                delay = min(self.retry_cap_s, 0.5 * 2 ** min(failures, 16))
                self._retry_at[name] = time.monotonic() + delay
                log.warning("outbox consumer %s failed; retrying in %.1f s", name, delay, exc_info=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.drain_once()
            self._wake.wait(self.interval_s)
            self._wake.clear()


class WebhookFailed(Exception):
    pass


def _post(url: str, body: bytes, timeout_s: float) -> int:
    import urllib.error  # with http.client and email, imported only when a webhook is given
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in Webhook
        url, data=body, method="POST", headers={"content-type": "application/json", "user-agent": "artreg"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310
            status: int = answer.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


class Webhook:
    """Posts each event to a URL as EventBridge would deliver it (`version`, `id` (the event_id),
    `detail-type`, `source`, `time`, `resources`, `detail`), retried with backoff until it answers 2xx."""

    def __init__(
        self,
        url: str,
        source: str = DEFAULT_SOURCE,
        *,
        attempts: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 8.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        post: Callable[[str, bytes, float], int] = _post,
    ):
        if not url.startswith(("http://", "https://")):
            raise Invalid(f"webhook URL {url!r} is not http:// or https://", details={"field": "webhook"})
        self.url = url
        self.source = source
        self.attempts = attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._post = post

    def __call__(self, event: Event) -> None:
        body = json.dumps(event.envelope(self.source), separators=(",", ":"), ensure_ascii=False).encode()
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(jittered(attempt, self.backoff_base_s, self.backoff_cap_s))
            try:
                status = self._post(self.url, body, self.timeout_s)
            except OSError as error:
                problem = str(error)
                continue
            if 200 <= status < 300:
                return
            problem = f"HTTP {status}"
        raise WebhookFailed(f"event {event.event_id} not taken by {self.url}: {problem}")
