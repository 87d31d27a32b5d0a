"""`artreg server`: the embedded default, served by uvicorn. API requests become API Gateway (HTTP
API, payload 2.0) proxy events for the very resolver the Lambda runs, one resolver per worker thread
(`local.resolver`); blob PUT/GET go to the folder blob store through its HMAC-signed, expiring URLs
(in place of S3's presigned ones); the web UI's files are served at /ui/ (`local.asgi`).

uvicorn does the HTTP/1.1 framing (Content-Length, chunked bodies, keep-alive, the idle timeout) with
httptools' C parser, on uvloop's event loop where it is installed (the `server` extra installs it, but
on Windows). The event loop's thread answers resolves itself (one indexed read, well under a
millisecond: `local.asgi`); everything else that may take long (the other API calls, SQLite's write
lock, hashing and file writes) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from artreg.local.asgi import App
from artreg.local.guard import Guard, is_loopback
from artreg.local.handoff import HandoffServer
from artreg.local.resolver import PerThread
from artreg.model import deferred
from artreg.model.errors import Invalid
from artreg.model.wire import ErrorBody, ErrorDetail
from artreg.registry.policy import Policy
from artreg.registry.service import RegistryService
from artreg.settings import ServerSettings

if TYPE_CHECKING:
    from artreg.local.idempotency import SqlitePersistenceLayer

log = logging.getLogger("artreg.server")
MAX_HEAD = 64 * 1024  # a request's line and headers, at most (h11's own bound is 16 KiB)
UI_STATIC = Path(__file__).resolve().parent.parent / "ui" / "static"  # the web UI's files, when installed
__all__ = ["Local", "is_loopback", "serve"]


@dataclass
class _Context:
    """The little of a Lambda context that Powertools reads."""

    function_name: str = "artreg-local"
    memory_limit_in_mb: int = 0
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:artreg-local"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        # a request in progress holds its Idempotency-Key this long at most if the server dies under it
        return 30_000


class Local:
    """The registry on one folder: SQLite records, a folder of blobs, and the API's resolver."""

    def __init__(
        self,
        data_dir: Path,
        base_url: str,
        *,
        webhook: str | None = None,
        protected_aliases: Iterable[str] | None = None,
        file_roots: Sequence[Path] = (),
        settings: ServerSettings | None = None,
    ):
        """`protected_aliases`: those an upload may not move (ARTREG_PROTECTED_ALIASES, `production`
        by default, when not given); `file_roots`: the folders whose `file://` references are pinned
        (none by default: a `file://` reference anywhere else is stored unverified); `settings`: the
        server's `ARTREG_*`, read here when not given."""
        from artreg.api.app import build_app
        from artreg.api.idempotency import IdempotentPosts
        from artreg.local.blobs import FolderBlobStore
        from artreg.local.outbox import Consumer, Outbox, Webhook
        from artreg.local.sqlite_store import SqliteStore
        from artreg.registry.lineage import LineageRecorder

        config = settings or server_settings(protected_aliases)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = FolderBlobStore(data_dir / "blobs", base_url=base_url, file_roots=file_roots)
        if config.multipart_threshold:
            self.blobs.multipart_threshold = config.multipart_threshold
        if config.part_size:
            self.blobs.part_size = config.part_size
        self.store = SqliteStore(data_dir / "registry.db")
        # the outbox feeds the same lineage consumer as the Lambda, and a webhook if asked for (from the
        # events made after it was first given: a new URL is a new consumer)
        recorder = LineageRecorder(self.store)
        consumers: dict[str, Consumer] = {"lineage": lambda event: recorder.record(event.detail_type, event.detail)}
        if webhook:
            consumers[f"webhook:{webhook}"] = Webhook(webhook, config.event_source)
        self.outbox = Outbox(self.store, consumers, new_only=frozenset(c for c in consumers if c != "lineage"))
        self.registry = RegistryService(
            self.store,
            self.blobs,
            policy=Policy(protected_aliases=config.protected_aliases),
            lineage_catch_up=lambda: self.outbox.catch_up("lineage"),
        )
        # a resolver for each worker thread: Powertools keeps the request it handles on itself
        self._resolvers = PerThread(lambda: build_app(self.registry, caller=lambda _: None))
        self._keys_path = data_dir / "idempotency.db"
        self._keys_lock = threading.Lock()
        self._keys: SqlitePersistenceLayer | None = None
        self.idempotency = IdempotentPosts(self._idempotency_keys)

    def _idempotency_keys(self) -> SqlitePersistenceLayer:
        """The `Idempotency-Key` records, opened once however many threads ask at once: by `warm`, in the
        background once the server serves (Powertools' idempotency utility, with the boto3 it imports, is
        no part of starting), or by a keyed POST that comes first."""
        with self._keys_lock:
            if self._keys is None:
                from artreg.local.idempotency import SqlitePersistenceLayer

                keys = SqlitePersistenceLayer(self._keys_path)
                keys.start_over()  # a request in flight when a server died is not waited for
                self._keys = keys
            return self._keys

    def warm(self) -> None:
        """Loads what the first keyed POST would otherwise wait for (see `_idempotency_keys`)."""
        try:
            self._idempotency_keys()
        except Exception:  # the first POST meets it again, and answers it
            log.exception("could not open the Idempotency-Key records")

    def handle_api(self, event: dict[str, Any]) -> dict[str, Any]:
        """Resolves one API Gateway event, on the calling thread's own resolver (a worker thread's, or
        the event loop's for a resolve)."""
        from artreg.api.app import metrics

        context = cast(LambdaContext, _Context(aws_request_id=event["requestContext"]["requestId"]))
        answer: dict[str, Any] = self.idempotency.resolve(self._resolvers.get().resolve, event, context)
        # Lambda flushes the EMF metrics after each invocation; here nothing reads them, and left alone
        # Powertools would print them to stdout every 100 values, until a pipe nobody reads is full
        metrics.clear_metrics()
        if event["requestContext"]["http"]["method"] not in ("GET", "HEAD"):
            self.outbox.wake()  # it may have written events
        return answer


class _JsonErrors:
    """uvicorn answers a request its parser refuses (a malformed or negative Content-Length, two of
    them, a bad chunk, a header too large) with a plain-text 400 and closes the connection; this
    answers the same in API.md's error body."""

    transport: asyncio.Transport

    def send_400_response(self, msg: str) -> None:
        body = ErrorBody(error=ErrorDetail(code="invalid_request", message=f"malformed HTTP request: {msg}"))
        data = body.model_dump_json().encode()
        head = (
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + data)
        self.transport.close()


class _HeadLimit:
    """A bound on a request's head (request line and headers) for httptools, which has none (h11's is
    `h11_max_incomplete_event_size`): past MAX_HEAD bytes still in the head, 400 and close. The chunk
    in which a head begins may also end the request before it, so counting starts with the next."""

    transport: asyncio.Transport
    _in_head = False
    _first = False
    _head_bytes = 0

    def send_400_response(self, msg: str) -> None: ...  # (from _JsonErrors)

    def on_message_begin(self) -> None:
        super().on_message_begin()  # type: ignore[misc]
        self._in_head, self._first, self._head_bytes = True, True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if not self._in_head or self.transport.is_closing():
            return
        if self._first:
            self._first = False
        else:
            self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD:
            self.send_400_response(f"the request's head is over {MAX_HEAD} bytes")


def _protocol(name: str) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with API.md's 400: httptools (llhttp, in C: the default, faster
    with bytes; measured in benchmarks/RESULTS.md) or h11 (pure Python), by `ARTREG_HTTP`."""
    if name == "h11":
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return type("ArtregH11", (_JsonErrors, H11Protocol), {})
    if name == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return type("ArtregHttpTools", (_JsonErrors, _HeadLimit, HttpToolsProtocol), {})
    raise SystemExit(f"ARTREG_HTTP must be httptools or h11, not {name!r}")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made before the registry so that port 0 has picked its port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named outright: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and uvicorn writes an answer's head and body apart: with Nagle, each answer waited ~40 ms
    # for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def server_settings(protected_aliases: Iterable[str] | None = None) -> ServerSettings:
    """The server's `ARTREG_*`, with the `--protected-alias` flags in place of ARTREG_PROTECTED_ALIASES
    when given; a value that breaks its rule ends `artreg server` saying which and why."""
    try:
        given = {} if protected_aliases is None else {"protected_aliases": protected_aliases}
        return ServerSettings.from_environment(**given)
    except ValidationError as error:
        problem = error.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else "ARTREG_*"  # the variable (from_environment)
        raise SystemExit(f"{name}: {problem['msg']} (got {problem.get('input')!r})") from None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is advertised as loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def serve(
    host: str,
    port: int,
    data_dir: str | Path,
    public_url: str | None = None,
    webhook: str | None = None,
    trust_origins: tuple[str, ...] = (),
    protected_aliases: Iterable[str] | None = None,
    file_roots: Sequence[Path] = (),
) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    config = server_settings(protected_aliases)
    protocol = _protocol(config.http)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    url = public_url or f"http://{_url_host(host)}:{bound}"
    try:
        guard = Guard.for_server(host, bound, public_url, (*config.trust_origins, *trust_origins))
    except Invalid as error:
        raise SystemExit(error.message) from None
    local = Local(Path(data_dir), url, webhook=webhook, file_roots=file_roots, settings=config)
    deferred.build_all()  # requests validate on many threads: every model built before the first
    handoff = HandoffServer.start(local.blobs, Path(data_dir) / "handoff") if config.handoff else None
    app = App(local, guard, ui=config.ui_dir or UI_STATIC, handoff=handoff.path if handoff else None)
    server_config = uvicorn.Config(
        app,
        http=protocol,
        lifespan="off",
        ws="none",  # no websockets: nor their libraries' import at start
        access_log=False,
        log_level="warning",
        server_header=False,
        timeout_keep_alive=15,  # an idle kept-alive connection is closed after this many seconds
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=MAX_HEAD,
    )
    if not is_loopback(host):
        log.warning(
            "listening on %s, beyond loopback: this server has NO authentication; "
            "anyone who can reach it can read and write every artifact",
            host,
        )
    # a resolve needs the GIL for a few short moments; with writers and byte movers holding it in turns,
    # each of those waits up to the switch interval (5 ms by default): a shorter one bounds its latency
    sys.setswitchinterval(0.001)
    local.outbox.start()
    print(json.dumps({"artreg": "serving", "url": url, "data": str(Path(data_dir).resolve())}), flush=True)
    # the `Idempotency-Key` layer (Powertools' utility, whose package imports boto3: ~0.25 s, ~25 MiB) is
    # loaded once the server serves, beside it, rather than by the first POST, which waited for it
    threading.Thread(target=local.warm, name="artreg-warm", daemon=True).start()
    try:
        uvicorn.Server(server_config).run(sockets=[sock])
    finally:
        sock.close()
        if handoff is not None:
            handoff.stop()
        app.pools.shutdown()
        local.outbox.stop()
