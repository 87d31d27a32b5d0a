"""The API Lambda's handler over HTTP, for tools that speak HTTP (schemathesis): each request becomes the
API Gateway (HTTP API, payload 2.0) event it would be, in the process that holds moto's mock. What API
Gateway does before the function runs is done here as AWS documents it: a request without a SigV4
`Authorization` header is `403 {"message": "Forbidden"}`, and the caller's ARN rides on the event.
(The signature itself is not checked: moto cannot.)"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
CALLER = "arn:aws:sts::123456789012:assumed-role/train/job-7"
SIGNED = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/execute-api/aws4_request, Signature=0"


def api_handler(monkeypatch: pytest.MonkeyPatch, table: str, bucket: str, *, fresh_clients: bool = True) -> Handler:
    """`functions/api/app.lambda_handler`, imported fresh once the environment and moto are in place;
    its settings read again, and its boto3 clients made again unless `fresh_clients` is False (then they
    stay made once per process, as in a Lambda: moto answers them in each test's mock)."""
    monkeypatch.setenv("ARTREG_TABLE_NAME", table)
    monkeypatch.setenv("ARTREG_BUCKET_NAME", bucket)
    monkeypatch.setenv("ARTREG_EVENT_BUS_NAME", "artreg-test")
    monkeypatch.setenv("ARTREG_MULTIPART_THRESHOLD", str(5 * 1024**2))
    monkeypatch.setenv("ARTREG_PART_SIZE", str(5 * 1024**2))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "artreg")
    for module in ("functions.api.app", "artreg.api.lambda_entry"):
        sys.modules.pop(module, None)
    from artreg.aws import clients
    from artreg.settings import settings

    if fresh_clients:
        clients.dynamodb_client.cache_clear()
        clients.s3_client.cache_clear()
    settings.cache_clear()
    handler: Handler = importlib.import_module("functions.api.app").lambda_handler
    return handler


def proxy_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event API Gateway sends for a request (duplicate query keys joined by commas, as it does)."""
    split = urlsplit(target)
    params: dict[str, str] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": split.path,
        "rawQueryString": split.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": params or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "authorizer": {
                "iam": {"accessKey": "AKIA", "accountId": "123456789012", "userArn": CALLER, "userId": "AROA"}
            },
            "domainName": "api.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": method,
                "path": split.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": f"{time.time_ns():x}",
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text or None,
        "isBase64Encoded": encoded,
    }


@contextmanager
def serving(handler: Handler) -> Iterator[str]:
    """The handler behind a local URL, one request at a time (as one Lambda instance takes them)."""
    lock = threading.Lock()

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes: with Nagle's algorithm on, the body would wait for the
        # client's delayed ACK of the headers (40 ms on Linux), on every answer
        disable_nagle_algorithm = True

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):  # every method reaches the function, as with an ANY route
                return self.forward
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if not self.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
                self.send(403, {"content-type": "application/json"}, json.dumps({"message": "Forbidden"}).encode())
                return
            with lock:
                answer = handler(proxy_event(self.command, self.path, dict(self.headers), body), LambdaContext())
            text = answer.get("body") or ""
            data = base64.b64decode(text) if answer.get("isBase64Encoded") else text.encode()
            self.send(answer["statusCode"], answer.get("headers") or {}, b"" if self.command == "HEAD" else data)

        def send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Front)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
