"""Requests no client should send, and the answer API.md gives each: the same on the Lambda handler
(tests/integration/test_bad_input.py) and on `artreg server` over HTTP (tests/e2e/test_bad_input.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

UPLOADS = "/v1/projects/vision/artifacts/resnet/uploads"
VALID = json.dumps({"files": [{"path": "a.bin", "size": 1, "sha256": "0" * 64}], "aliases": ["staging"]}).encode()
JSON_TYPE = {"content-type": "application/json"}


@dataclass(frozen=True)
class BadInput:
    name: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    status: int
    code: str
    answer_headers: dict[str, str] = field(default_factory=dict)


BAD_INPUTS = [
    BadInput("body not UTF-8", "POST", UPLOADS, b'{"type": "\xff\xfe"}', JSON_TYPE, 400, "invalid_request"),
    BadInput("JSON 1,000 deep", "POST", UPLOADS, b"[" * 1000 + b"]" * 1000, JSON_TYPE, 400, "invalid_request"),
    BadInput(
        "metadata 1,000 deep",
        "POST",
        UPLOADS,
        b'{"metadata": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1001,
        JSON_TYPE,
        400,
        "invalid_request",
    ),
    BadInput("no content type", "POST", UPLOADS, VALID, {}, 415, "unsupported_media_type"),
    BadInput("text/plain", "POST", UPLOADS, VALID, {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    BadInput(
        "multipart/form-data",
        "POST",
        UPLOADS,
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--',
        {"content-type": "multipart/form-data; boundary=x"},
        415,
        "unsupported_media_type",
    ),
    BadInput(
        "JSON in another charset",
        "POST",
        UPLOADS,
        VALID,
        {"content-type": "application/json; charset=latin-1"},
        415,
        "unsupported_media_type",
    ),
    BadInput("a lone surrogate", "POST", UPLOADS, b'{"tags": ["\\ud800"]}', JSON_TYPE, 400, "invalid_request"),
    BadInput("NaN", "POST", UPLOADS, b'{"metadata": {"x": NaN}}', JSON_TYPE, 400, "invalid_request"),
    BadInput("TRACE", "TRACE", UPLOADS, b"", {}, 405, "method_not_allowed", {"allow": "POST"}),
    BadInput("OPTIONS", "OPTIONS", UPLOADS, b"", {}, 405, "method_not_allowed", {"allow": "POST"}),
    BadInput("DELETE of the uploads", "DELETE", UPLOADS, b"", {}, 405, "method_not_allowed", {"allow": "POST"}),
    BadInput("unknown route", "POST", "/v1/projects/vision/uploads", VALID, JSON_TYPE, 404, "not_found"),
]


def assert_refused(case: BadInput, status: int, headers: dict[str, str], body: Any) -> None:
    """The status and code of the case, in API.md's error body (with `Allow` on a 405)."""
    assert status == case.status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == case.code
    assert body["error"]["message"]
    lowered = {k.lower(): v for k, v in headers.items()}
    assert lowered["content-type"].startswith("application/json")
    for name, value in case.answer_headers.items():
        assert lowered[name] == value
