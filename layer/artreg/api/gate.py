"""What every request passes before the routes: a known route and method, and a body that is JSON in
UTF-8, not nested past reason. Powertools raises its own errors for these (a 500 for a body that is not
UTF-8, a RecursionError for deep JSON, its own 404/415/422 shapes), before any exception handler of
ours runs; checking them here gives each the error body of API.md, on Lambda and locally alike, since
both call `ArtregResolver.resolve`."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.model.errors import ArtregError, Invalid, MethodNotAllowed, NotFound, UnsupportedMediaType
from artreg.model.wire import ErrorBody, ErrorDetail

JSON = "application/json"
MAX_BODY_DEPTH = 32  # the deepest valid request (metadata at most 8 deep, inside a file entry) is ~12
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class ArtregResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver with API.md's answer to what it would refuse in its own shape."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            checked = self._admit(event)
        except ArtregError as error:
            return _refusal(error)
        return super().resolve(checked, context)

    def _convert_matches_into_route_keys(self, match: re.Match[str]) -> dict[str, str]:
        # each parameter matched one segment of the raw path, so it may be decoded now ('%2F' included)
        return {key: unquote(value) for key, value in match.groupdict().items()}

    def allowed_methods(self, path: str) -> list[str]:
        """The methods the routes have for `path` (HEAD wherever GET is)."""
        methods = {route.method for route in self._static_routes + self._dynamic_routes if route.rule.match(path)}
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    def _admit(self, event: Mapping[str, Any]) -> dict[str, Any]:
        http = event.get("requestContext", {}).get("http", {})
        method, path = str(http.get("method", "")).upper(), str(http.get("path") or event.get("rawPath") or "")
        allowed = self.allowed_methods(path)
        if not allowed:
            raise NotFound(f"no route {path}", details={"path": path[:200]})
        if method not in allowed:
            raise MethodNotAllowed(
                f"{method} is not a method of {path}; it has {', '.join(allowed)}", details={"allow": allowed}
            )
        admitted = dict(event)
        if method == "HEAD":  # answered as GET; API Gateway and the local server send no body with it
            admitted["requestContext"] = {**event["requestContext"], "http": {**http, "method": "GET"}}
        if event.get("body"):
            admitted.update(body=_json_text(event), isBase64Encoded=False)
        return admitted


def _json_text(event: Mapping[str, Any]) -> str:
    """The body as text, once it is known to be JSON in UTF-8 whose nesting a parser can follow."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    charset = re.search(r"charset\s*=\s*\"?([^\";\s]+)", params, re.IGNORECASE)
    if media_type.strip().lower() != JSON or (charset and charset.group(1).lower() not in ("utf-8", "utf8")):
        sent = f"not {content_type!r}" if content_type else "and none was sent"
        raise UnsupportedMediaType(
            f"a request body must be JSON in UTF-8, with Content-Type: {JSON}; {sent}",
            details={"content_type": content_type[:200]},
        )
    raw: str = event["body"]
    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode("utf-8")
        text = data.decode("utf-8")
    except (binascii.Error, UnicodeError) as error:
        raise Invalid("the request body is not valid UTF-8", details={"field": "body"}) from error
    if text.count("[") + text.count("{") > MAX_BODY_DEPTH:  # only then is the nesting worth measuring
        depth = max(accumulate(1 if b in "[{" else -1 for b in _BRACKETS.findall(_STRINGS.sub("", text))), default=0)
        if depth > MAX_BODY_DEPTH:
            raise Invalid(f"the request body nests deeper than {MAX_BODY_DEPTH} levels", details={"field": "body"})
    try:  # JSON that Python reads but no store can keep: NaN, 1e999, a lone surrogate ("\ud800")
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
        if "\\u" in text:  # a surrogate comes only from an escape (the text is UTF-8): else none to look for
            json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as error:
        raise Invalid(
            "the request body holds a lone surrogate, which is not text", details={"field": "body"}
        ) from error
    except ValueError as error:
        raise Invalid(f"the request body is not JSON: {error}", details={"field": "body"}) from error
    return text


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is beyond the range of a JSON number this registry keeps")
    return number


def _refusal(error: ArtregError) -> dict[str, Any]:
    """An answer in the shape `resolve` gives API Gateway (HTTP API, payload 2.0)."""
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, details=error.details))
    headers = {"Content-Type": JSON}
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.details["allow"])
    return {"statusCode": error.status, "headers": headers, "body": body.model_dump_json(), "isBase64Encoded": False}
