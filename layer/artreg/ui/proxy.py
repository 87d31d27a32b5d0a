"""`artreg ui --url https://<api>`: the web UI on loopback for a deployed stack. It serves the UI's static
files and forwards the page's /v1/ calls to the stack's API, each signed with SigV4 from the user's own
AWS credentials, so the credentials stay in this process and never reach the page.

It is a plain ASGI app served by uvicorn. Since it holds credentials, it answers only what its own page
would ask: a Host that names it on loopback (no DNS rebinding), no Origin but its own and no cross-site
fetch (another web page the user has open cannot call it), GET/HEAD for the UI and the API's own methods
for /v1/. Requests go upstream with a few known headers only (no cookies), answers come back with a few
known headers only."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3
from botocore.exceptions import BotoCoreError

from artreg.ui import PREFIX, SECURITY_HEADERS, static_file

if TYPE_CHECKING:
    from artreg.client.sigv4 import SigV4Signer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
MAX_BODY = 6 * 1024**2  # what API Gateway and Lambda take
FORWARDED_REQUEST = ("accept", "content-type", "if-match", "if-none-match", "idempotency-key")
FORWARDED_ANSWER = (
    "content-type",
    "etag",
    "location",  # a file's presigned URL: the browser fetches the bytes from S3 itself
    "allow",
    "retry-after",
    "x-artifact-version",
    "x-artifact-digest",
)


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()


class UiProxy:
    """The ASGI app. `port` is the one it listens on: the only Host and Origin it serves name it."""

    def __init__(
        self,
        api_url: str,
        port: int,
        signer: SigV4Signer | None,
        *,
        pool: urllib3.PoolManager | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.signer = signer
        self.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})
        self.origins = frozenset(f"http://{host}" for host in self.hosts)
        self.pool = pool or urllib3.PoolManager(maxsize=8, retries=False, timeout=timeout)
        region = signer.region if signer else None
        # what the page shows in its curl and SDK lines: where the API is, never how to sign for it
        self.config = json.dumps({"api_url": self.api_url, "signed": signer is not None, "region": region}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websocket work to do
        method: str = scope["method"]
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(headers)
        if refusal:
            await self._answer(send, 403, _error("forbidden", refusal), {"content-type": "application/json"})
        elif path.startswith("/v1/"):
            if method not in API_METHODS:
                await self._not_allowed(send, ", ".join(sorted(API_METHODS)))
            else:
                await self._forward(scope, receive, send, headers)
        elif method not in ("GET", "HEAD"):
            await self._not_allowed(send, "GET, HEAD")
        elif not path.startswith(PREFIX):  # `/` and the rest lead to the UI
            await self._answer(send, 302, b"", {"location": PREFIX})
        else:
            await self._static(send, method, path)

    def _refusal(self, headers: dict[str, str]) -> str | None:
        if headers.get("host") not in self.hosts:
            return "this server answers only to its own loopback address"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return f"requests from {origin[:200]} are not served"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site requests are not served"
        return None

    async def _static(self, send: Send, method: str, path: str) -> None:
        if path == PREFIX + "config.json":
            found: tuple[bytes, str] | None = (self.config, "application/json")
        else:
            found = static_file(path)
        if found is None:
            await self._answer(send, 404, _error("not_found", f"no UI file at {path[:200]}"), {})
            return
        data, content_type = found
        extra = {**SECURITY_HEADERS, "content-type": content_type, "cache-control": "no-cache"}
        await self._answer(send, 200, b"" if method == "HEAD" else data, extra, length=len(data))

    async def _forward(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await self._answer(send, 413, _error("too_large", f"a request body over {MAX_BODY} bytes"), {})
                return
            if not message.get("more_body"):
                break
        # the path exactly as the page encoded it: a file's path may hold %2F and the like
        target = self.api_url + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        outgoing = {name: headers[name] for name in FORWARDED_REQUEST if name in headers}
        try:
            status, answer_headers, data = await asyncio.to_thread(
                self._upstream, scope["method"], target, outgoing, bytes(body)
            )
        except (urllib3.exceptions.HTTPError, BotoCoreError) as error:  # unreachable, or no credentials to sign
            reason = f"the registry at {self.api_url} could not be asked: {type(error).__name__}"
            await self._answer(send, 503, _error("unavailable", reason), {})
            return
        await self._answer(send, status, data, {**answer_headers, "cache-control": "no-store"})

    def _upstream(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        # signed here, once per request: refreshable credentials (SSO, roles) are read again each time
        signed = self.signer.sign(method, url, headers, body) if self.signer else headers
        response = self.pool.request(method, url, body=body or None, headers=signed, redirect=False)
        kept = {name: response.headers[name] for name in FORWARDED_ANSWER if name in response.headers}
        return response.status, kept, response.data

    async def _not_allowed(self, send: Send, allow: str) -> None:
        await self._answer(send, 405, _error("method_not_allowed", f"allowed: {allow}"), {"allow": allow})

    async def _answer(
        self, send: Send, status: int, body: bytes, headers: dict[str, str], *, length: int | None = None
    ) -> None:
        headers = {
            "content-type": "application/json",
            **headers,
            "x-content-type-options": "nosniff",  # no other page can load an answer as a script or a style
            "content-length": str(len(body) if length is None else length),
        }
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def serve(api_url: str, port: int, signer: SigV4Signer | None) -> None:
    """Serves until interrupted; prints one JSON line with the URL to open once it listens."""
    import uvicorn

    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {api_url!r}")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))  # loopback only: the proxy signs with the user's credentials
    listener.listen(128)  # from now on a connection waits for uvicorn instead of being refused
    port = listener.getsockname()[1]
    app = UiProxy(api_url, port, signer)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, server_header=False)
    url = f"http://127.0.0.1:{port}{PREFIX}"
    print(json.dumps({"artreg": "ui", "url": url, "api": app.api_url, "signed": signer is not None}), flush=True)
    print(f"artreg ui: open {url}", file=sys.stderr, flush=True)
    uvicorn.Server(config).run(sockets=[listener])
