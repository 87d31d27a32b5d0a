"""The OpenAPI document as the contract: each route's real answers (status, body, headers) and what
Powertools cannot say from the routes alone (the file route's path template, the SigV4 scheme). A
test compares the document with what the routes answer (tests/integration/test_contract.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseHeader

from artreg.model import names
from artreg.model.wire import ErrorBody, GatewayMessage

JSON = "application/json"
FILE_ROUTE = "/files/.+"  # Powertools' path parameters stop at a slash; a file path does not
LINK_ROUTE = "/links/.+"  # nor does a role (`checkpoints/epoch-3`)

_STRING: dict[str, Any] = {"type": "string"}
RETRY_AFTER: dict[str, OpenAPIResponseHeader] = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
VERSION_HEADERS: dict[str, OpenAPIResponseHeader] = {
    "X-Artifact-Version": {"description": "the version the ref resolved to", "schema": _STRING},
    "X-Artifact-Digest": {"description": "that version's manifest digest", "schema": _STRING},
}
ETAG: dict[str, OpenAPIResponseHeader] = {"ETag": {"description": "the digest, quoted", "schema": _STRING}}

_ERRORS: dict[int, str] = {
    400: "invalid_request: malformed JSON or UTF-8, nesting too deep, a wrong type, a name or path that breaks a rule",
    403: "forbidden: the caller may not touch this project, or an upload names a protected alias",
    404: "not_found: no such project, artifact, version, alias, upload or file",
    409: "a conflict with what is stored (version_exists, alias_conflict, blobs_missing, upload_state), "
    "blobs_verifying (with Retry-After) while stored blobs are being re-hashed, or "
    "idempotency_in_progress (with Retry-After) while a request with the same Idempotency-Key is handled",
    412: "precondition_failed: expected_version or If-Match no longer holds",
    413: "too_large: a body, manifest or metadata over its limit",
    415: "unsupported_media_type: a body whose Content-Type is not application/json (or none)",
    422: "idempotency_key_reused: an Idempotency-Key sent again with a different request",
    429: "throttled: back-end throttling; retry with backoff",
    503: "unavailable: a transient failure; retry with backoff",
}
# API Gateway answers these itself, in its own shape, before the function runs
_GATEWAY = {403, 413, 429, 503}

READ = (400, 404, 429, 503)
BODY = (413, 415)
CHANGE = (*READ, *BODY, 409)
POST = (*CHANGE, 422)


def ok(
    model: Any,
    description: str,
    headers: dict[str, OpenAPIResponseHeader] | None = None,
    links: dict[str, Any] | None = None,
) -> OpenAPIResponse:
    answer: OpenAPIResponse = {"description": description}
    if links:
        answer["links"] = links
    if model is not None:
        answer["content"] = {JSON: {"model": model}}
    if headers:
        answer["headers"] = headers
    return answer


def link(path: str, method: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to the operation at `path` (a route of app.py, `<param>` style), for readers and
    for the fuzzer's stateful runs: the answer's values that the next call takes."""
    template = path.replace("<", "{").replace(">", "}")
    pointer = template.replace("~", "~0").replace("/", "~1")
    same = {p: f"$request.path.{p}" for p in ("project", "name") if "{" + p + "}" in template}
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": {**same, **parameters}}


def responses(answers: dict[int, OpenAPIResponse], errors: tuple[int, ...] = READ) -> dict[int, OpenAPIResponse]:
    """The route's answers, and the error body of API.md for each error status it can give."""
    documented = dict(answers)
    for status in sorted(set(errors)):
        error: OpenAPIResponse = {"description": _ERRORS[status], "content": {JSON: {"model": ErrorBody}}}
        if status in (409, 429, 503):
            error["headers"] = RETRY_AFTER
        documented[status] = error
    return documented


# routes whose last parameter may hold slashes: Powertools matches them as a regex, the document names them
_TAIL_ROUTES: dict[str, tuple[str, str, dict[str, Any]]] = {
    FILE_ROUTE: (
        "path",
        "/files/{path}",
        {
            "description": "the file's path in the version (its slashes included)",
            "type": "string",
            "minLength": 1,
            "maxLength": names.MAX_PATH_BYTES,
            "pattern": names.PATH_PATTERN,
        },
    ),
    LINK_ROUTE: (
        "role",
        "/links/{role}",
        {
            "description": "the link's role (`training_data`, `checkpoints/epoch-3`)",
            "type": "string",
            "pattern": f"^{names.ROLE_RE.pattern}$",
        },
    ),
}


def finish(document: dict[str, Any], *, signed: bool) -> dict[str, Any]:
    """What Powertools makes of the routes, made exact: no 422 for its own validation (a 400 here),
    `files/{path}` and `links/{role}` as path templates, and API Gateway's answers and SigV4 where
    requests are signed."""
    document = copy.deepcopy(document)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("ValidationError", "HTTPValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        for route, (name, template, schema) in _TAIL_ROUTES.items():
            if path.endswith(route):
                path = path.removesuffix(route) + template
                for operation in item.values():
                    operation.setdefault("parameters", []).append(
                        {
                            "name": name,
                            "in": "path",
                            "required": True,
                            "description": schema["description"],
                            "schema": {k: v for k, v in schema.items() if k != "description"},
                        }
                    )
        for operation in item.values():
            answers = operation["responses"]
            if "HTTPValidationError" in json.dumps(answers.get("422", {})):
                del answers["422"]
            if signed:
                _gateway_answers(answers)
        paths[path] = item
    document["paths"] = paths
    if signed:
        schemas["GatewayMessage"] = GatewayMessage.model_json_schema()
        document["components"]["securitySchemes"] = {
            "sigv4": {
                "type": "apiKey",
                "name": "Authorization",
                "in": "header",
                "description": "AWS Signature Version 4 (execute-api:Invoke on the route), checked by API Gateway",
                "x-amazon-apigateway-authtype": "awsSigv4",
            }
        }
        document["security"] = [{"sigv4": []}]
    return document


def _gateway_answers(answers: dict[str, Any]) -> None:
    """Behind API Gateway, a 403 (unsigned or not allowed), 413, 429 or 503 may be its own `{"message"}`."""
    gateway = {"$ref": "#/components/schemas/GatewayMessage"}
    for status in sorted(_GATEWAY):
        answer: dict[str, Any] = answers.setdefault(str(status), {"description": "API Gateway's own answer"})
        mine = answer.get("content", {}).get(JSON, {}).get("schema")
        answer["content"] = {JSON: {"schema": {"oneOf": [mine, gateway]} if mine else gateway}}
