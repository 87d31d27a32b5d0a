"""A small HTTP front for the API Lambda's handler, as API Gateway is one: each request becomes a proxy
event (payload 2.0, IAM caller) for `handler`, one at a time, and its answer goes back. For tests that
drive the deployed code path with the SDK over real sockets (on moto)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.conftest import api_event

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LambdaFront:
    def __init__(self, handler: Handler, context: Any) -> None:
        lock = threading.Lock()  # Lambda runs one request per process at a time

        class Front(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
            # client's delayed ACK of the headers (40 ms on Linux), on every answer
            disable_nagle_algorithm = True

            def _any(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else None
                event = api_event(
                    self.command,
                    split.path,
                    body=body,
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                    headers=dict(self.headers.items()),
                )
                with lock:
                    answer = handler(event, context)
                data = answer.get("body") or ""
                raw = base64.b64decode(data) if answer.get("isBase64Encoded") else data.encode()
                self.send_response(answer["statusCode"])
                for name, value in (answer.get("headers") or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
        self.server.daemon_threads = True
        self.address = ("127.0.0.1", self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
