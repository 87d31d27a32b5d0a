"""HTTP for the SDK: one `urllib3.PoolManager` (keep-alive, thread-safe), JSON bodies, API.md's
error body raised as artreg's error classes, retries with exponential backoff and full jitter, and
SigV4 signing of API calls when a signer is given.

Every call is retried on 429, 502, 503 and 504 and on connection errors, up to `RetryPolicy.attempts`
attempts and `RetryPolicy.deadline` seconds. That includes the POSTs of an upload: each POST carries an
`Idempotency-Key` made for that one call and sent again on each of its retries, so that a retry whose
first try acted (its answer lost) gets that answer instead of acting twice (API.md); a `409
idempotency_in_progress` (the first try still running) is retried as well. Blob transfers to presigned
URLs are retried on 500 too (S3's `InternalError`), and are never signed: the URL carries its own
signature.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode, urlsplit

import urllib3
import urllib3.exceptions as u3

from artreg import __version__
from artreg.backoff import jittered
from artreg.client.errors import ArtregError, Invalid, StreamBroken, Unreachable, error_from_answer

if TYPE_CHECKING:
    from artreg.client.sigv4 import SigV4Signer

T = TypeVar("T")
CHUNK = 1024 * 1024
USER_AGENT = f"artreg-sdk/{__version__}"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BLOB_RETRY_STATUSES = RETRY_STATUSES | {500}
IN_PROGRESS = "idempotency_in_progress"  # a 409 that says: the first try of this call still runs
# what a dropped, refused or timed-out connection raises (urllib3 re-raises these with retries=False)
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    u3.TimeoutError,
    u3.ProtocolError,
    u3.IncompleteRead,
    u3.MaxRetryError,
    ConnectionError,
    TimeoutError,
)

Query = Mapping[str, str] | Sequence[tuple[str, str]]
BodyFactory = Callable[[], Iterable[bytes | memoryview]]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `attempts` tries, no new try past `deadline` seconds after the
    first; the delay before try n+1 is uniform in [0, min(max_delay, base_delay * 2**n)] (full
    jitter), or the server's `Retry-After` when that is longer."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = 120.0
    # a connection refused (or a name that does not resolve) by a host that never answered this
    # client is retried this long only: most likely nothing listens there, and the user should hear
    # so at once. A host that did answer before is restarting: it gets the whole deadline.
    refused_deadline: float = 1.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        backoff = jittered(retry, self.base_delay, self.max_delay)
        if retry_after is not None:
            return min(self.max_delay, max(backoff, retry_after))
        return backoff


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: bytes

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


class _Again(Exception):
    """An answer worth another try (429, 5xx): carries the error to raise when tries run out."""

    def __init__(self, error: ArtregError, retry_after: float | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (urllib3's dict is case-insensitive already; a plain dict is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lower), None)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = header(headers, "Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Transport:
    """Sends API calls (JSON, signed when `signer` is set) and blob transfers (never signed)."""

    def __init__(
        self,
        base_url: str,
        *,
        signer: SigV4Signer | None = None,
        retry: RetryPolicy | None = None,
        maxsize: int = 10,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        pool: Any = None,
    ) -> None:
        split = urlsplit(base_url)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise Invalid(f"registry URL {base_url!r} is not an http(s) URL", details={"field": "url"})
        self.base_url = base_url.rstrip("/")
        self.host = split.netloc
        self.signer = signer
        self.retry = retry or RetryPolicy()
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=timeout)
        # block=False: a burst over maxsize opens extra connections instead of waiting for one
        self.pool: Any = pool or urllib3.PoolManager(num_pools=16, maxsize=maxsize, block=False)
        self._answered: set[str] = set()  # hosts that answered once (RetryPolicy.refused_deadline)

    def close(self) -> None:
        clear = getattr(self.pool, "clear", None)
        if clear is not None:
            clear()

    # ------------------------------------------------------------ API calls

    def url(self, path: str, query: Query | None = None) -> str:
        return self.base_url + path + (f"?{urlencode(query)}" if query else "")

    def api(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        query: Query | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One API call; raises the error class of an answer >= 400 (after retries for the retryable).
        A POST carries `idempotency_key`, a new one when not given, the same on every retry; `headers` are
        sent besides the usual ones (`If-Match`)."""
        url = self.url(path, query)
        base = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        if body is not None:
            base["Content-Type"] = "application/json"
        if method == "POST":
            base["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex

        def send() -> Response:
            headers = self.signer.sign(method, url, base, body or b"") if self.signer else dict(base)
            raw = self.pool.request(
                method,
                url,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=self.timeout,
                preload_content=True,
            )
            answer = Response(int(raw.status), raw.headers, bytes(raw.data or b""))
            if answer.status >= 400:
                after = _retry_after(answer.headers)
                error = error_from_answer(answer.status, answer.data, what=f"{method} {path}", retry_after=after)
                if answer.status in RETRY_STATUSES or error.code == IN_PROGRESS:
                    raise _Again(error, after)
                raise error
            return answer

        return self.attempts(send, what=self.host)

    def json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Query | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        return self.api(method, path, body=data, query=query, headers=headers).json()

    # ------------------------------------------------------------ blobs, straight to storage

    def put_blob(self, url: str, headers: Mapping[str, str], length: int, body: BodyFactory) -> str:
        """PUTs `length` bytes that `body()` yields (called again for each try) to a presigned URL
        with exactly `headers` (plus Content-Length when they lack it); answers the ETag header."""
        sent = dict(headers)
        if header(sent, "Content-Length") is None:
            sent["Content-Length"] = str(length)

        def send() -> str:
            raw = self.pool.request(
                "PUT",
                url,
                body=body(),
                headers=sent,
                retries=False,
                redirect=False,
                timeout=self.timeout,
                preload_content=True,
            )
            status = int(raw.status)
            if status >= 400:
                error = error_from_answer(status, bytes(raw.data or b""), what="blob upload")
                if status in BLOB_RETRY_STATUSES:
                    raise _Again(error, _retry_after(raw.headers))
                raise error
            return header(raw.headers, "ETag") or ""

        return self.attempts(send, what=urlsplit(url).netloc)

    def get_blob(self, url: str) -> Iterator[bytes]:
        """Streams the bytes behind a presigned URL in chunks of up to 1 MiB. The request is retried
        before the first byte; a connection that drops mid-stream raises an error for the caller
        to start over (it knows what it already wrote): `StreamBroken`."""

        def send() -> Any:
            raw = self.pool.request(
                "GET",
                url,
                retries=False,
                redirect=True,
                timeout=self.timeout,
                preload_content=False,
            )
            status = int(raw.status)
            if status >= 400:
                data = raw.read()
                raw.release_conn()
                error = error_from_answer(status, data, what="blob download")
                if status in BLOB_RETRY_STATUSES:
                    raise _Again(error, _retry_after(raw.headers))
                raise error
            return raw

        where = urlsplit(url).netloc
        raw = self.attempts(send, what=where)
        complete = False
        try:
            yield from raw.stream(CHUNK)
            complete = True
        except CONNECTION_ERRORS as exc:
            raise StreamBroken(f"download from {where} broke off: {exc}") from exc
        finally:
            if not complete:
                raw.close()  # a half-read answer must not go back to the pool as a live connection
            raw.release_conn()

    # ------------------------------------------------------------ retries

    def attempts(self, send: Callable[[], T], *, what: str) -> T:
        """`send()` until it answers, raises a final error, or the tries or the deadline run out."""
        policy = self.retry
        started = policy.clock()
        retry = 0
        while True:
            try:
                answer = send()
            except _Again as again:
                self._answered.add(what)
                error, retry_after, cause = again.error, again.retry_after, None
            except ArtregError:  # an answer, final
                self._answered.add(what)
                raise
            except CONNECTION_ERRORS as exc:
                error, retry_after, cause = Unreachable(f"could not reach {what}: {exc}"), None, exc
            else:
                self._answered.add(what)
                return answer
            delay = policy.delay(retry, retry_after)
            retry += 1
            refused = isinstance(cause, u3.NewConnectionError) and what not in self._answered
            deadline = policy.refused_deadline if refused else policy.deadline
            if retry >= policy.attempts or policy.clock() - started + delay > deadline:
                raise error from cause
            policy.sleep(delay)
