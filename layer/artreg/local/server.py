"""`artreg server`: the embedded default. API requests become API Gateway (HTTP API, payload 2.0)
proxy events for the very resolver the Lambda runs; blob PUT/GET go to the folder blob store through
its HMAC-signed, expiring URLs (in place of S3's presigned ones)."""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, quote, urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.events import DEFAULT_SOURCE
from artreg.model.errors import ArtregError, Invalid, NotFound, TooLarge
from artreg.model.wire import ErrorBody, ErrorDetail
from artreg.registry.service import Policy, RegistryService
from artreg.settings import RegistrySettings

log = logging.getLogger("artreg.server")
MAX_API_BODY = 6 * 1024**2  # what API Gateway and Lambda take; blobs never pass through the API


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
        event_source: str = DEFAULT_SOURCE,
        protected_aliases: Iterable[str] | None = None,
        file_roots: Sequence[Path] = (),
    ):
        """`protected_aliases`: those an upload may not move (ARTREG_PROTECTED_ALIASES, `production`
        by default, when not given); `file_roots`: the folders whose `file://` references are pinned
        (none by default: a `file://` reference anywhere else is stored unverified)."""
        from artreg.api.app import build_app
        from artreg.api.idempotency import IdempotentPosts
        from artreg.local.blobs import FolderBlobStore
        from artreg.local.idempotency import SqlitePersistenceLayer
        from artreg.local.outbox import Consumer, Outbox, Webhook
        from artreg.local.sqlite_store import SqliteStore
        from artreg.registry.lineage import LineageRecorder

        data_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = FolderBlobStore(data_dir / "blobs", base_url=base_url, file_roots=file_roots)
        threshold = os.environ.get("ARTREG_MULTIPART_THRESHOLD")  # as the Lambda's; the folder's default else
        if threshold:
            self.blobs.multipart_threshold = _threshold(threshold)
        self.store = SqliteStore(data_dir / "registry.db")
        # the outbox feeds the same lineage consumer as the Lambda, and a webhook if asked for (from the
        # events made after it was first given: a new URL is a new consumer)
        recorder = LineageRecorder(self.store)
        consumers: dict[str, Consumer] = {"lineage": lambda event: recorder.record(event.detail_type, event.detail)}
        if webhook:
            consumers[f"webhook:{webhook}"] = Webhook(webhook, event_source)
        self.outbox = Outbox(self.store, consumers, new_only=frozenset(c for c in consumers if c != "lineage"))
        rules = (
            RegistrySettings() if protected_aliases is None else RegistrySettings(protected_aliases=protected_aliases)
        )
        self.registry = RegistryService(
            self.store,
            self.blobs,
            policy=Policy(protected_aliases=rules.protected_aliases),
            lineage_catch_up=lambda: self.outbox.catch_up("lineage"),
        )
        # Powertools keeps the request being handled on its router *class* (BaseRouter.current_event), so
        # two resolvers in one process share it too: one request at a time goes through the resolver.
        # Blob bytes never do, and a request spends ~1 ms in it.
        self._app = build_app(self.registry, caller=lambda _: None)
        keys = SqlitePersistenceLayer(data_dir / "idempotency.db")
        keys.start_over()
        self.idempotency = IdempotentPosts(keys)
        self._resolving = threading.Lock()

    def handle_api(self, event: dict[str, Any]) -> dict[str, Any]:
        from artreg.api.app import metrics

        with self._resolving:
            context = cast(LambdaContext, _Context(aws_request_id=event["requestContext"]["requestId"]))
            answer: dict[str, Any] = self.idempotency.resolve(self._app.resolve, event, context)
            # Lambda flushes the EMF metrics after each invocation; here nothing reads them, and left alone
            # Powertools would print them to stdout every 100 values, until a pipe nobody reads is full
            metrics.clear_metrics()
        if event["requestContext"]["http"]["method"] not in ("GET", "HEAD"):
            self.outbox.wake()  # it may have written events
        return answer


class _Body(io.RawIOBase):
    """A request body of `length` bytes; counts what was read, so a refused request can be drained
    without reading into the next request on the connection."""

    def __init__(self, stream: BinaryIO, length: int):
        self.stream = stream
        self.remaining = length

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.stream.read(size) if size else b""
        self.remaining -= len(data)
        return data

    def drain(self) -> None:
        while self.remaining and self.read(1024**2):
            pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "artreg"
    # headers and body leave in one write: two small writes on a kept-alive connection meet Nagle's
    # algorithm and the client's delayed ACK, and every answer waits ~40 ms
    wbufsize = 256 * 1024
    disable_nagle_algorithm = True
    local: Local  # set on the class made by `make_server`

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        # any other method (OPTIONS, TRACE, ...) reaches the API too, whose 405 names those a route has;
        # http.server would answer 501 with an HTML page
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        body = _Body(self.rfile, int(self.headers.get("content-length") or 0))  # type: ignore[arg-type]
        try:
            if path.startswith("/blobs/"):
                self._blob(body)
            elif path in ("/", "/ui") or path.startswith("/ui/"):
                self._ui(path, body)
            else:
                self._api(body)
        except ArtregError as error:
            self._refuse(body, error.status, ErrorDetail(code=error.code, message=error.message, details=error.details))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            log.exception("request failed: %s %s", self.command, path)
            self._refuse(body, 500, ErrorDetail(code="internal", message="the server failed; see its log"))

    # ------------------------------------------------------------ API: the Lambda's handler code

    def _api(self, body: _Body) -> None:
        split = urlsplit(self.path)
        if body.remaining > MAX_API_BODY:
            raise TooLarge(f"a request body of {body.remaining} bytes is over the API's limit of {MAX_API_BODY}")
        raw = body.read()
        answer = self.local.handle_api(self._event(split.path, split.query, raw))
        text = answer.get("body") or ""
        data = base64.b64decode(text) if answer.get("isBase64Encoded") else text.encode()
        self.send_response(answer["statusCode"])
        headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        for name, value in headers.items():
            self.send_header(name, value)
        for cookie in answer.get("cookies") or []:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _event(self, path: str, query: str, raw: bytes) -> dict[str, Any]:
        """The event API Gateway would send for this request (duplicate query keys joined by commas, as it does)."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        try:
            body, encoded = raw.decode(), False
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        request_id = f"{time.time_ns():x}"
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "queryStringParameters": params or None,
            "requestContext": {
                "http": {
                    "method": self.command,
                    "path": path,
                    "protocol": self.request_version,
                    "sourceIp": self.client_address[0],
                    "userAgent": self.headers.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": "$default",
                "stage": "$default",
                "timeEpoch": int(time.time() * 1000),
            },
            "body": body or None,
            "isBase64Encoded": encoded,
        }

    # ------------------------------------------------------------ blobs: signed URLs of the folder store

    def _blob(self, body: _Body) -> None:
        split = urlsplit(self.path)
        method = "GET" if self.command == "HEAD" else self.command
        request = self.local.blobs.verify_url(method, split.path, split.query)
        if method == "PUT":
            if self.headers.get("content-length") is None:
                self.close_connection = True  # a chunked body is not read: the connection cannot go on
                raise Invalid("a blob PUT must send Content-Length")
            etag = self.local.blobs.receive(request, body, body.remaining)  # type: ignore[arg-type]
            self.send_response(200)
            self.send_header("etag", etag)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if method != "GET":
            raise NotFound(f"no blob route for {method}")
        with self.local.blobs.open_blob(request.project, request.sha256) as source:
            size = source.seek(0, 2)
            source.seek(0)
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(size))
            self.send_header("etag", f'"{request.sha256}"')
            if request.filename:
                self.send_header(
                    "content-disposition", f"attachment; filename*=UTF-8''{quote(request.filename, safe='')}"
                )
            self.end_headers()
            if self.command == "GET":
                shutil.copyfileobj(source, self.wfile, 1024**2)

    # ------------------------------------------------------------ the web UI's static files

    def _ui(self, path: str, body: _Body) -> None:
        from artreg.ui import PREFIX, SECURITY_HEADERS, static_file

        if self.command not in ("GET", "HEAD"):
            detail = ErrorDetail(code="method_not_allowed", message="the UI answers GET and HEAD only")
            self._refuse(body, 405, detail, {"allow": "GET, HEAD"})
            return
        if not path.startswith(PREFIX):  # `/` and `/ui` lead to the UI
            self.send_response(302)
            self.send_header("location", PREFIX)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        found = static_file(path)
        if found is None:
            raise NotFound(f"no UI file at {path}")
        data, content_type = found
        self.send_response(200)
        for name, value in {**SECURITY_HEADERS, "content-type": content_type, "cache-control": "no-cache"}.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(data)

    # ------------------------------------------------------------ plumbing

    def _refuse(self, body: _Body, status: int, error: ErrorDetail, headers: dict[str, str] | None = None) -> None:
        """The error body of API.md, after what is left of the request body (unless that is too much)."""
        if body.remaining > MAX_API_BODY:
            self.close_connection = True
        else:
            body.drain()
        self._send_json(status, ErrorBody(error=error).model_dump_json(), headers)

    def _send_json(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    local: Local


def make_server(
    host: str,
    port: int,
    data_dir: Path,
    public_url: str | None = None,
    *,
    webhook: str | None = None,
    event_source: str = DEFAULT_SOURCE,
    protected_aliases: Iterable[str] | None = None,
    file_roots: Sequence[Path] = (),
) -> tuple[Server, str]:
    """Binds first (port 0 picks a free one), then builds the registry with the URL clients will use,
    and starts draining its outbox (`server.local.outbox`)."""
    handler = type("BoundHandler", (Handler,), {})
    server = Server((host, port), handler)
    url = public_url or f"http://{_url_host(host)}:{server.server_address[1]}"
    local = Local(
        data_dir,
        url,
        webhook=webhook,
        event_source=event_source,
        protected_aliases=protected_aliases,
        file_roots=file_roots,
    )
    handler.local = local  # type: ignore[attr-defined]
    server.local = local
    local.outbox.start()
    return server, url


def _threshold(value: str) -> int:
    if not value.isdigit() or int(value) < 5 * 1024**2:
        raise SystemExit(f"ARTREG_MULTIPART_THRESHOLD must be a number of bytes, at least 5242880; not {value!r}")
    return int(value)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard bind is advertised as loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str,
    port: int,
    data_dir: str | Path,
    public_url: str | None = None,
    ready: Callable[[str], None] | None = None,
    webhook: str | None = None,
    protected_aliases: Iterable[str] | None = None,
    file_roots: Sequence[Path] = (),
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    source = os.environ.get("ARTREG_EVENT_SOURCE") or DEFAULT_SOURCE
    server, url = make_server(
        host,
        port,
        Path(data_dir),
        public_url,
        webhook=webhook,
        event_source=source,
        protected_aliases=protected_aliases,
        file_roots=file_roots,
    )
    if not is_loopback(host):
        log.warning(
            "listening on %s, beyond loopback: this server has NO authentication; "
            "anyone who can reach it can read and write every artifact",
            host,
        )
    print(json.dumps({"artreg": "serving", "url": url, "data": str(Path(data_dir).resolve())}), flush=True)
    if ready:
        ready(url)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.local.outbox.stop()
