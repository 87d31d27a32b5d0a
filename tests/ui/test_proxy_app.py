"""The proxy's ASGI app called directly, with a fake connection pool in place of the network: what it
sends upstream and what it lets back to the page."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.credentials import Credentials

from artreg.client.sigv4 import SigV4Signer
from artreg.ui.proxy import MAX_BODY, UiProxy

PORT = 8081
HOST = ("host", f"127.0.0.1:{PORT}")


@dataclass
class Upstream:
    """Answers every request with `answer`; keeps what it was sent."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    data: bytes = b"{}"
    sent: list[dict[str, Any]] = field(default_factory=list)

    def request(self, method: str, url: str, body: bytes | None, headers: dict[str, str], redirect: bool) -> Any:
        self.sent.append({"method": method, "url": url, "body": body, "headers": headers, "redirect": redirect})
        return self


def call(
    app: UiProxy, method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    raw_path, _, query = path.partition("?")
    chunks = [body[i : i + 1024**2] for i in range(0, len(body), 1024**2)] or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in (headers if headers is not None else [HOST])],
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    answer = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], answer, b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
def app(upstream: Upstream) -> UiProxy:
    signer = SigV4Signer("eu-west-1", Credentials("AKIDEXAMPLE", "secret-key", "session-token"))
    return UiProxy("https://abc.execute-api.eu-west-1.amazonaws.com/", PORT, signer, pool=upstream)  # type: ignore[arg-type]


def test_a_call_goes_upstream_signed_with_its_path_as_sent_and_no_cookie(app: UiProxy, upstream: Upstream):
    # Given a page's call for a file whose name holds an encoded slash, with a cookie and other headers
    path = "/v1/projects/p/artifacts/n/versions/1.0.0/files/a%2Fb.txt?limit=5"
    headers = [HOST, ("cookie", "session=1"), ("accept", "application/json"), ("x-forwarded-for", "1.2.3.4")]
    # When it goes through the proxy
    call(app, "GET", path, headers)
    # Then the API gets the very same path and query, signed, with only the headers the API reads
    (sent,) = upstream.sent
    assert sent["url"] == "https://abc.execute-api.eu-west-1.amazonaws.com" + path
    assert sent["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/" in sent["headers"]["Authorization"]
    assert sent["headers"]["X-Amz-Security-Token"] == "session-token"
    assert {k.lower() for k in sent["headers"]} == {"accept", "authorization", "x-amz-date", "x-amz-security-token"}
    assert sent["redirect"] is False  # a file's 302 goes to the browser, which fetches the bytes itself


def test_the_answer_keeps_only_what_the_page_needs(app: UiProxy, upstream: Upstream):
    # Given an API answer with a cookie and the headers of a resolved ref
    upstream.status = 302
    upstream.headers = {"location": "https://bucket.s3/x?sig", "x-artifact-version": "1.0.0", "set-cookie": "a=b"}
    # When the page asks for it
    status, headers, _ = call(app, "GET", "/v1/resolve/p/n@production?file=a.txt")
    # Then it gets the redirect and the version, no cookie, and nothing to keep in a cache
    assert (status, headers["location"], headers["x-artifact-version"]) == (302, "https://bucket.s3/x?sig", "1.0.0")
    assert "set-cookie" not in headers
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"


def test_a_body_over_the_apis_limit_is_refused_before_anything_is_sent(app: UiProxy, upstream: Upstream):
    status, _, body = call(app, "POST", "/v1/projects/p/artifacts/n/uploads", [HOST], b"x" * (MAX_BODY + 1))
    assert (status, b"too_large" in body) == (413, True)
    assert upstream.sent == []


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("TRACE", "/v1/projects", "DELETE, GET, HEAD, PATCH, POST, PUT"), ("PUT", "/ui/", "GET, HEAD")],
)
def test_methods_outside_the_api_and_the_ui_are_not_allowed(app: UiProxy, method: str, path: str, allow: str):
    status, headers, _ = call(app, method, path)
    assert (status, headers["allow"]) == (405, allow)


def test_the_ui_files_are_served_with_head_and_missing_ones_are_404(app: UiProxy):
    status, headers, body = call(app, "HEAD", "/ui/")
    assert (status, body) == (200, b"")
    assert int(headers["content-length"]) > 0
    assert headers["content-type"].startswith("text/html")
    status, _, body = call(app, "GET", "/ui/nothing.js")
    assert (status, b"not_found" in body) == (404, True)


def test_a_request_without_a_host_is_refused(app: UiProxy, upstream: Upstream):
    status, _, body = call(app, "GET", "/v1/projects", headers=[])
    assert (status, b"forbidden" in body) == (403, True)
    assert upstream.sent == []
