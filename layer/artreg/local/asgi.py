"""The local server's ASGI application, served by uvicorn (see `local.server`).

- `/v1/...`: the API. The body is read up to API Gateway's 6 MiB and never past it, then the request
  becomes the proxy event API Gateway would send, resolved by the Lambda's own resolver in a worker
  thread (reads and writes in separate pools, so a read never queues behind commits waiting on
  SQLite's write lock). `GET /v1/resolve/...` alone is answered on the event loop's own thread (see
  `App._api`).
- `/blobs/...`: the folder blob store's signed URLs; the bytes stream from the socket into the store
  in a worker thread, hashed as they are written.
- `/ui/...`: the web UI's static files, when the package has them; `GET /` sends a browser there.

Every request passes the Host/Origin guard first, and every error this layer answers has API.md's
body; a refused request whose body was not read closes its connection rather than read the rest.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import functools
import io
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, ClassVar
from urllib.parse import parse_qsl, quote

from artreg.local.blob_files import check_length
from artreg.local.guard import Guard, is_loopback
from artreg.local.handoff import offer_large
from artreg.model.errors import ArtregError, Invalid, NotFound, TooLarge
from artreg.model.handoff import LARGE
from artreg.model.wire import ErrorBody, ErrorDetail
from artreg.ui import SECURITY_HEADERS

log = logging.getLogger("artreg.server")
MAX_API_BODY = 6 * 1024**2  # what API Gateway and Lambda take; blobs never pass through the API
_MiB = 1024**2
# a blob this small is written or read on the event loop: its few system calls cost less than a thread's
SMALL_BLOB = 64 * 1024
JSON = "application/json"
_BLOB_METHODS = ("GET", "HEAD", "PUT")
_UI_METHODS = ("GET", "HEAD")
_CORS_HEADERS = "authorization, content-type, idempotency-key, if-match, if-none-match, x-amz-date"
_CORS_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ApiHandler = Callable[[dict[str, Any]], dict[str, Any]]


class MethodNotAllowed(ArtregError):
    status: ClassVar[int] = 405
    default_code: ClassVar[str] = "method_not_allowed"

    def __init__(self, method: str, allow: tuple[str, ...]):
        super().__init__(f"{method} is not allowed here; allowed: {', '.join(allow)}", details={"allow": list(allow)})
        self.allow = allow


class Disconnected(Exception):
    """The client went away before its request was read."""


class Request:
    """One HTTP request: its scope, and its body as far as it was read."""

    def __init__(self, scope: Scope, receive: Receive, send: Send):
        self.scope = scope
        self.receive = receive
        self.send = send
        self.method: str = scope["method"]
        self.path: str = scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or scope["path"]
        self.query: str = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value  # as API Gateway joins them
        self.headers = headers
        # no body to read: a request without Content-Length or Transfer-Encoding (RFC 9112 6.3), or an empty one
        self.body_done = headers.get("content-length") == "0" or (
            "content-length" not in headers and "transfer-encoding" not in headers
        )
        self.cors_origin: str | None = None
        self.started = False  # the answer's headers went out

    @property
    def length(self) -> int | None:
        """The declared Content-Length (uvicorn's parser refused a malformed one), None if chunked."""
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    async def chunk(self) -> bytes | None:
        """The next piece of the body, or None at its end."""
        if self.body_done:
            return None
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        if not message.get("more_body", False):
            self.body_done = True
        return bytes(message.get("body", b""))

    async def read(self, limit: int) -> bytes:
        """The whole body, if it is at most `limit` bytes: TooLarge as soon as it is known to be more,
        from the declared length or from what arrived, before anything past the limit is read."""
        declared = self.length
        if declared is not None and declared > limit:
            raise TooLarge(f"a request body of {declared} bytes is over the API's limit of {limit}")
        parts: list[bytes] = []
        total = 0
        while (piece := await self.chunk()) is not None:
            total += len(piece)
            if total > limit:
                raise TooLarge(f"the request body is over the API's limit of {limit} bytes")
            parts.append(piece)
        return b"".join(parts)

    def cors_headers(self) -> list[tuple[bytes, bytes]]:
        """For a trusted foreign origin (`--trust-origin`), the headers that let its page read the answer."""
        if not self.cors_origin:
            return []
        return [(b"access-control-allow-origin", self.cors_origin.encode("latin-1")), (b"vary", b"origin")]

    async def answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, content_type: str | None = None
    ) -> None:
        out: list[tuple[bytes, bytes]] = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()
        ]
        if content_type:
            out.append((b"content-type", content_type.encode()))
        if status not in (204, 304):  # which carry no body, and no Content-Length (RFC 9110 8.6)
            out.append((b"content-length", str(len(body)).encode()))
        out += self.cors_headers()
        if not self.body_done:
            # what is left of the body is not read: the connection cannot carry another request
            out.append((b"connection", b"close"))
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": out})
        await self.send({"type": "http.response.body", "body": body})  # uvicorn sends none for a HEAD

    async def error(self, error: ArtregError) -> None:
        detail = ErrorDetail(code=error.code, message=error.message, details=error.details)
        headers = {"allow": ", ".join(error.allow)} if isinstance(error, MethodNotAllowed) else None
        await self.answer(error.status, ErrorBody(error=detail).model_dump_json().encode(), headers, content_type=JSON)


class Pools:
    """The worker threads: API reads, API writes, and blob bytes, each its own bounded pool."""

    # The API's work is CPU under one GIL: more threads than the 2 to 4 that keep the cores busy would
    # not answer faster, each only takes the GIL from the event loop more often. Writes also take
    # SQLite's one write lock in turn; two, so that one waiting on something else (pinning a remote
    # reference, say) does not stop every commit (4 gave ~25% more commits under load, and resolves that
    # waited ~15% longer: benchmarks/RESULTS.md, server-load). A multipart completion, which hashes a whole
    # blob, goes to `bytes`, whose threads mostly wait on sockets and disks with the GIL let go.
    def __init__(self, reads: int = 4, writes: int = 2, bytes_: int = 16) -> None:
        self.reads = ThreadPoolExecutor(reads, thread_name_prefix="artreg-read")
        self.writes = ThreadPoolExecutor(writes, thread_name_prefix="artreg-write")
        self.bytes = ThreadPoolExecutor(bytes_, thread_name_prefix="artreg-bytes")

    def shutdown(self) -> None:
        for pool in (self.reads, self.writes, self.bytes):
            pool.shutdown(wait=False, cancel_futures=True)


class App:
    """The ASGI application over one `Local` registry (duck-typed: `handle_api`, `blobs`)."""

    def __init__(
        self,
        local: Any,
        guard: Guard,
        *,
        ui: Path | None = None,
        pools: Pools | None = None,
        handoff: str | None = None,
    ) -> None:
        self.local = local
        self.guard = guard
        self.handoff = handoff  # the handoff socket's path, if the server has one (`local.handoff`)
        self.pools = pools or Pools()
        self.ui_dir = ui if ui is not None and ui.is_dir() else None

    @functools.cached_property
    def ui(self) -> Any:
        """Starlette's StaticFiles over the UI's folder (safe paths, content types, ETag and Last-Modified
        with 304s, HEAD, `index.html` for a folder), made at the first UI request: no part of starting."""
        from starlette.staticfiles import StaticFiles

        return StaticFiles(directory=self.ui_dir, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websockets are not used (uvicorn runs with lifespan off)
        request = Request(scope, receive, send)
        try:
            request.cors_origin = self.guard.check(request.headers.get("host"), request.headers.get("origin"))
            if request.method == "OPTIONS" and request.cors_origin:
                await request.answer(
                    204,
                    headers={
                        "access-control-allow-methods": _CORS_METHODS,
                        "access-control-allow-headers": _CORS_HEADERS,
                    },
                )
            elif request.path.startswith("/blobs/"):
                await self._blob(request)
            elif request.path == "/ui" or request.path.startswith("/ui/"):
                await self._ui(request, scope)
            elif request.path == "/" and self.ui_dir is not None:
                _allow(request, _UI_METHODS)
                await request.answer(302, headers={"location": "/ui/"})  # as `artreg ui` sends it
            else:
                await self._api(request)
        except ArtregError as error:
            await self._refuse(request, error)
        except Disconnected:
            pass
        except Exception:
            log.exception("request failed: %s %s", request.method, request.path)
            await self._refuse(request, ArtregError("the server failed; see its log"))

    async def _refuse(self, request: Request, error: ArtregError) -> None:
        if request.started:
            return  # the answer is under way: uvicorn closes the connection when the app returns
        await request.error(error)

    # ------------------------------------------------------------ the API: the Lambda's resolver

    async def _api(self, request: Request) -> None:
        """A resolve of a version (`GET /v1/resolve/...` without `?file=`, which may read a manifest
        chunk from the blob folder) is answered here, on the event loop's thread: it is one indexed
        SQLite read (which never waits on a writer, in WAL mode) and well under a millisecond of CPU,
        while a hand-over to a worker thread and back waits twice for the GIL behind the commits and
        byte movers that hold it in turn: under load, most of a resolve's time. Every other request
        runs in a worker thread, as it may be long (a page of 1,000, a commit)."""
        raw = await request.read(MAX_API_BODY)
        event = _event(request, raw)
        if (
            request.method in ("GET", "HEAD")
            and request.path.startswith("/v1/resolve/")
            and "file" not in (event["queryStringParameters"] or {})
        ):
            answer = self.local.handle_api(event)
        else:
            pool = self.pools.reads if request.method in ("GET", "HEAD") else self.pools.writes
            if request.method == "POST" and request.path.endswith("/complete"):
                pool = self.pools.bytes  # a multipart completion: reading a whole blob, no place in the write queue
            answer = await asyncio.get_running_loop().run_in_executor(pool, self.local.handle_api, event)
        text = answer.get("body") or ""
        data = base64.b64decode(text) if answer.get("isBase64Encoded") else text.encode()
        headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ", ".join(values)
        if self.handoff and request.method == "POST" and request.path.endswith("/staging") and _on_loopback(request):
            headers["artreg-handoff"] = self.handoff  # a client on this machine may hand its files off
            if answer["statusCode"] == 200 and request.headers.get("artreg-handoff") == LARGE:
                data = offer_large(self.local.blobs, request.path.split("/")[3], data)  # over the threshold too
        await request.answer(answer["statusCode"], data, headers)

    # ------------------------------------------------------------ blobs: signed URLs of the folder store

    async def _blob(self, request: Request) -> None:
        _allow(request, _BLOB_METHODS)
        blobs = self.local.blobs
        method = "GET" if request.method == "HEAD" else request.method
        signed = blobs.verify_url(method, request.path, request.query)
        loop = asyncio.get_running_loop()
        if method == "PUT":
            length = request.length
            if length is None:
                raise Invalid("a blob PUT must send Content-Length")
            if signed.size is not None:
                check_length(length, signed.size)
            if length <= SMALL_BLOB and signed.bundle is None:
                # read whole and written here: a few calls into the page cache (the blob is made durable later,
                # see GroupSync) cost less than handing it to a thread, whose GIL hand-offs cost the most
                etag = blobs.receive(signed, io.BytesIO(await request.read(length)), length)
            else:
                # a medium body is read whole, then one hand-over; a large one streams, never held in memory
                stream = io.BytesIO(await request.read(length)) if length <= _MiB else _BodyStream(request, loop)
                etag = await loop.run_in_executor(self.pools.bytes, blobs.receive, signed, stream, length)
            await request.answer(200, headers={"etag": etag})
            return
        if signed.bundle is not None:
            await self._bundle_out(request, signed)
            return
        if signed.size is not None and signed.size <= SMALL_BLOB:
            source: BinaryIO = blobs.open_blob(signed.project, signed.sha256)  # as a small PUT: no hand-over
        else:
            source = await loop.run_in_executor(self.pools.bytes, blobs.open_blob, signed.project, signed.sha256)
        try:
            size = source.seek(0, io.SEEK_END)
            source.seek(0)
            headers = [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(size).encode()),
                (b"etag", f'"{signed.sha256}"'.encode()),
            ]
            if request.cors_origin:
                headers += [
                    (b"access-control-allow-origin", request.cors_origin.encode("latin-1")),
                    (b"vary", b"origin"),
                ]
            if signed.filename:
                disposition = f"attachment; filename*=UTF-8''{quote(signed.filename, safe='')}"
                headers.append((b"content-disposition", disposition.encode()))
            request.started = True
            await request.send({"type": "http.response.start", "status": 200, "headers": headers})
            if request.method == "HEAD":
                await request.send({"type": "http.response.body", "body": b""})
                return
            left = size
            while left > 0:
                if left <= SMALL_BLOB:
                    chunk = source.read(left)
                else:
                    chunk = await loop.run_in_executor(self.pools.bytes, source.read, min(4 * _MiB, left))
                if not chunk:
                    raise ConnectionError("the blob got shorter while it was read")
                left -= len(chunk)
                await request.send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
        finally:
            source.close()

    async def _bundle_out(self, request: Request, signed: Any) -> None:
        """A bundle's blobs, concatenated in its order. Its first MiB is read before the answer starts,
        so a blob gone since the URL was signed is a 404; one gone later cuts the answer short, and the
        client fetches what it lacks blob by blob."""
        loop = asyncio.get_running_loop()
        pieces = await loop.run_in_executor(self.pools.bytes, self.local.blobs.bundle_pieces, signed)
        piece = await loop.run_in_executor(self.pools.bytes, next, pieces, b"")
        headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(signed.size).encode())]
        request.started = True
        await request.send({"type": "http.response.start", "status": 200, "headers": headers + request.cors_headers()})
        if request.method == "HEAD":
            await request.send({"type": "http.response.body", "body": b""})
            return
        sent = 0
        while piece:
            sent += len(piece)
            await request.send({"type": "http.response.body", "body": piece, "more_body": sent < signed.size})
            piece = await loop.run_in_executor(self.pools.bytes, next, pieces, b"") if sent < signed.size else b""
        if sent != signed.size:
            raise ConnectionError("a blob of the bundle went away while it was sent")

    # ------------------------------------------------------------ the web UI's static files

    async def _ui(self, request: Request, scope: Scope) -> None:
        if self.ui_dir is None:
            raise NotFound("this server has no web UI installed")
        _allow(request, _UI_METHODS)
        if request.path == "/ui":
            await request.answer(302, headers={"location": "/ui/"})
            return
        from starlette.exceptions import HTTPException

        sub = {**scope, "root_path": scope.get("root_path", "") + "/ui"}  # what StaticFiles serves is under it
        try:
            response = await self.ui.get_response(self.ui.get_path(sub), sub)
        except HTTPException as error:
            if error.status_code == 405:
                raise MethodNotAllowed(request.method, _UI_METHODS) from None
            raise NotFound(f"no UI file at {request.path[:200]!r}") from None
        # the page's policy (its own scripts only, never framed), as `artreg ui` sends it
        response.headers.update(SECURITY_HEADERS)
        request.started = True
        await response(sub, request.receive, request.send)


class _BodyStream(io.RawIOBase):
    """A blob PUT's body for the blob store's synchronous reader in a worker thread. The event loop
    gathers the next MiB while the thread hashes and writes the one before (two hand-overs a MiB,
    and the socket never waits for the disk)."""

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        self.request = request
        self.loop = loop
        self.buffer = bytearray()  # the worker thread's alone
        self.ahead: concurrent.futures.Future[bytes] | None = None
        self.ended = False

    def readable(self) -> bool:
        return True

    async def _gather(self, size: int) -> bytes:
        """At least `size` bytes of the body, or what is left of it (on the loop)."""
        pieces: list[bytes] = []
        total = 0
        while total < size and (piece := await self.request.chunk()) is not None:
            pieces.append(piece)
            total += len(piece)
        return b"".join(pieces)

    def _next(self) -> bytes:
        """The MiB gathered ahead (or gathered now), and the next one asked for at once."""
        if self.ahead is None:
            self.ahead = asyncio.run_coroutine_threadsafe(self._gather(_MiB), self.loop)
        gathered = self.ahead.result()
        self.ahead = None
        if gathered:
            self.ahead = asyncio.run_coroutine_threadsafe(self._gather(_MiB), self.loop)
        else:
            self.ended = True
        return gathered

    def read(self, size: int | None = -1) -> bytes:
        """At most `size` bytes (fewer at times, as a raw stream may answer), b"" at the end; what was
        gathered is handed on as it is, not copied again, unless it is more than asked for."""
        want = _MiB if size is None or size < 0 else size
        if not self.buffer and not self.ended:
            gathered = self._next()
            if len(gathered) <= want:
                return gathered
            self.buffer += gathered
        data = bytes(self.buffer[:want])
        del self.buffer[:want]
        return data

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.cancel()
        super().close()


def _allow(request: Request, methods: tuple[str, ...]) -> None:
    if request.method not in methods:
        raise MethodNotAllowed(request.method, methods)


def _on_loopback(request: Request) -> bool:
    """The request came from this machine (its peer's address, not a header it sent)."""
    client = request.scope.get("client") or ("", 0)
    return is_loopback(str(client[0]))


def _event(request: Request, raw: bytes) -> dict[str, Any]:
    """The event API Gateway (HTTP API, payload 2.0) would send for this request."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value  # as API Gateway joins them
    try:
        body, encoded = raw.decode(), False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    client = request.scope.get("client") or ("", 0)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": request.headers,
        "queryStringParameters": params or None,
        "requestContext": {
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": f"HTTP/{request.scope.get('http_version', '1.1')}",
                "sourceIp": client[0],
                "userAgent": request.headers.get("user-agent", ""),
            },
            "requestId": f"{time.time_ns():x}",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body or None,
        "isBase64Encoded": encoded,
    }
