"""The served OpenAPI document against what the routes answer: every status a scenario through the
API function meets is documented for its operation, with its body's schema and its headers."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
import requests

from tests.conftest import BUCKET, TABLE
from tests.support.lambda_gateway import LambdaContext, api_handler, proxy_event

BASE = "/v1/projects/vision/artifacts/resnet"
JSON_TYPE = {"content-type": "application/json"}
CONTRACT_HEADERS = ("x-artifact-version", "x-artifact-digest", "etag", "location", "retry-after", "allow")
Answer = tuple[str, str, int, dict[str, str], Any]  # method, path, status, headers, body


def operation_of(document: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented operation whose template matches `path` (the one with the most literal text)."""
    candidates = []
    for template, item in document["paths"].items():
        pattern = re.sub(r"\{path\}", ".+", re.sub(r"\{(?!path\})[^}]+\}", "[^/]+", template))
        if method.lower() in item and re.fullmatch(pattern, path):
            candidates.append((len(re.sub(r"\{[^}]+\}", "", template)), template, item[method.lower()]))
    assert candidates, f"{method} {path} is not in the document"
    _, template, operation = max(candidates)
    return template, operation


@pytest.fixture
def scenario(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], list[Answer]]:
    """A user's session through the API function, each answer kept."""
    handler = api_handler(monkeypatch, TABLE, BUCKET)
    answers: list[Answer] = []

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        result = handler(proxy_event(method, path, headers or JSON_TYPE, data), LambdaContext())
        text = result.get("body") or ""
        parsed = json.loads(text) if text else None
        answers.append((method, path.split("?")[0], result["statusCode"], result.get("headers") or {}, parsed))
        return parsed

    contract(call)
    document = call("GET", "/v1/openapi.json")
    return document, answers[:-1]


def contract(call: Callable[..., Any]) -> None:
    data = b"weights"
    entry = {"path": "model.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    started = call("POST", f"{BASE}/uploads", {"files": [entry]})
    for missing in started["missing"]:
        requests.put(missing["url"], data=data, headers=missing["headers"], timeout=10).raise_for_status()
    upload = f"{BASE}/uploads/{started['upload_id']}"
    call("POST", f"{upload}/files", {"files": []})
    call("POST", f"{upload}/commit")
    call("POST", f"{upload}/commit")  # again: 200
    call("POST", f"{BASE}/uploads", {"files": [entry], "commit": True, "aliases": ["staging"]})
    call("POST", f"{BASE}/uploads", {"files": [entry], "commit": True, "if_changed": True})
    call("POST", f"{BASE}/uploads", {"files": [entry], "version": "1.0.0"})  # 409 version_exists
    call("POST", f"{BASE}/uploads", {"metadata": {"x": "y" * 70_000}})  # 413
    call("POST", f"{BASE}/uploads", b"{}", {"content-type": "text/plain"})  # 415
    call("POST", f"{BASE}/uploads", {"version": "1.0"})  # 400
    record = call("GET", f"{BASE}/versions/latest")
    call("GET", f"{BASE}/versions/latest", headers={"if-none-match": f'"{record["digest"]}"'})  # 304
    call("GET", f"{BASE}/versions/9.9.9")  # 404
    call("GET", f"{BASE}/versions/latest/files/model.bin")  # 302
    call("GET", "/v1/resolve/vision/resnet@staging?file=model.bin")  # 302
    call("GET", "/v1/resolve/vision/resnet@staging")
    call("GET", f"{BASE}/versions/latest/files")
    call("GET", f"{BASE}/versions/latest/download")
    call("GET", f"{BASE}/versions")
    call("GET", BASE)
    call("GET", "/v1/projects/vision/artifacts")
    call("GET", "/v1/projects")
    call("PUT", f"{BASE}/aliases/production", {"version": "1.0.0", "expected_version": "2.0.0"})  # 412
    call("PUT", f"{BASE}/aliases/production", {"version": "1.0.0"})
    call("PUT", f"{BASE}/aliases/latest", {"version": "1.0.0"})  # 409 alias_conflict
    call("GET", f"{BASE}/aliases/production/history")
    call("DELETE", f"{BASE}/aliases/production")  # 204
    call("PATCH", f"{BASE}/versions/1.0.0", {"metadata": {"a": 1}, "tags_add": ["t"]})
    call("POST", f"{BASE}/versions/1.0.0/usages", {"run_id": "eval-1"})
    call("GET", "/v1/projects/vision/runs/eval-1")
    call("GET", f"{BASE}/versions/1.0.0/lineage")
    call("DELETE", f"{BASE}/versions/1.0.0")
    call("TRACE", f"{BASE}/versions/1.0.0")  # 405: no operation of its own


def test_every_answer_is_documented_with_its_body_and_headers(scenario: tuple[dict[str, Any], list[Answer]]) -> None:
    document, answers = scenario
    statuses = set()
    for method, path, status, headers, body in answers:
        if status == 405:
            continue  # a method with no operation: API.md's error body, checked in test_bad_input
        template, operation = operation_of(document, method, path)
        where = f"{method} {template} answered {status}"
        # Then the status is documented for the operation
        assert str(status) in operation["responses"], where
        documented = operation["responses"][str(status)]
        statuses.add(status)
        # with the schema of its body
        schema = documented.get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            assert schema, f"{where} with a body the document does not describe"
            jsonschema.validate(body, {"components": document["components"], **schema})
        # and every header of the contract it carries
        sent = {k.lower() for k in headers} & set(CONTRACT_HEADERS)
        assert sent <= {k.lower() for k in documented.get("headers", {})}, where
    # (the scenario met every kind of answer it set out to)
    assert statuses >= {200, 201, 204, 302, 304, 400, 404, 409, 412, 413, 415}


def test_every_route_is_in_the_document_and_nothing_else(scenario: tuple[dict[str, Any], list[Answer]]) -> None:
    from artreg.api import lambda_entry

    document, _ = scenario
    routes = {
        (r.method.lower(), r.rule.pattern) for r in lambda_entry.app._static_routes + lambda_entry.app._dynamic_routes
    }
    operations = {(m, t) for t, item in document["paths"].items() for m in item}
    assert len(operations) == len(routes) - 1  # all but GET /v1/openapi.json itself
    for method, template in operations:
        sample = re.sub(r"\{path\}", "a/b.bin", re.sub(r"\{[^}]+\}", "x", template))
        assert any(m == method and re.match(rule, sample) for m, rule in routes), (method, template)


def test_the_document_states_what_api_md_does(scenario: tuple[dict[str, Any], list[Answer]]) -> None:
    document, _ = scenario
    text = json.dumps(document)
    # no validation error shape that is never sent, the SigV4 scheme, files/{path} as a template
    assert "HTTPValidationError" not in text
    assert document["security"] == [{"sigv4": []}]
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    file_route = document["paths"]["/v1/projects/{project}/artifacts/{name}/versions/{ref}/files/{path}"]["get"]
    assert "Location" in file_route["responses"]["302"]["headers"]
    # a 422 only where an Idempotency-Key can be reused: on POSTs, with the error body
    for template, item in document["paths"].items():
        for method, operation in item.items():
            assert ("422" in operation["responses"]) == (method == "post"), (method, template)
    # the naming rules, in the request schemas and the path parameters
    upload = document["components"]["schemas"]["StartUpload"]["properties"]
    assert upload["aliases"]["items"]["pattern"] == "^[a-z][a-z0-9_-]{0,63}$"
    project = next(
        p for p in document["paths"]["/v1/projects/{project}/artifacts"]["get"]["parameters"] if p["name"] == "project"
    )
    assert project["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
