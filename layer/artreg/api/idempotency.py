"""`Idempotency-Key` (API.md, "Retries are safe"), the one place of its rule, on both back ends.

A `POST` that carries the header runs through Powertools' idempotency utility: the first request
under (project, route, key) saves an in-progress record, runs, and saves its answer; a repeat answers
that answer without acting (`Idempotent-Replayed: true`); a repeat with another request (method, path
or body) is `422 idempotency_key_reused`; a repeat while the first still runs is
`409 idempotency_in_progress` with `Retry-After`. Records are kept `TTL` (a day) after the answer.
The persistence layer is Powertools' DynamoDB one on the registry's table on Lambda
(`artreg.aws.clients.idempotency_store`) and a SQLite one locally (`artreg.local.idempotency`).

Which answers are kept: 2xx only. A 4xx writes nothing (API.md), so acting again on a repeat is safe,
and keeping it would hold a caller to a refusal that a fix (the missing blob uploaded, an alias
unprotected) has since lifted; a 5xx, 429 or 503 is transient by definition, and its retry must act.
An answer that is not kept deletes the in-progress record, so that the next repeat acts.

Powertools' idempotency utility is imported at the first keyed POST, not with this module: it imports
its DynamoDB layer and so boto3 (~0.2 s), which a cold start or an `artreg server` that only reads
needs none of (benchmarks/cold_start.py, server_start.py)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from artreg.model.errors import ArtregError, Conflict, Invalid, KeyReused, Retryable
from artreg.model.wire import ErrorBody, ErrorDetail

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
TTL_SECONDS = 24 * 3600
KEY_PREFIX = "post"  # the records' own prefix in the store they share (a DynamoDB item's SK is `post#<hash>`)
_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII
# the answer's headers that a replay repeats: what a client reads of a POST's answer
KEPT_HEADERS = frozenset({"content-type", "etag", "location", "x-artifact-version", "x-artifact-digest"})
# a path segment after one of these is a value, not part of the route
_VALUE_AFTER = frozenset({"projects", "artifacts", "uploads", "blobs", "versions", "aliases", "links", "runs"})

Answer = dict[str, Any]  # an API Gateway (HTTP API, payload 2.0) proxy answer
Resolve = Callable[[dict[str, Any], LambdaContext], Answer]


def kept(status: int) -> bool:
    """Whether an answer of this status is kept for repeats (see the module's note)."""
    return 200 <= status < 300


def scope(path: str) -> tuple[str, str]:
    """(project, route) of a request path: `/v1/projects/vision/artifacts/resnet/uploads` is in
    project `vision` on route `/v1/projects/{}/artifacts/{}/uploads`."""
    parts = path.split("/")
    project = ""
    route = []
    for index, part in enumerate(parts):
        after = parts[index - 1] if index else ""
        if after in _VALUE_AFTER:
            project = part if after == "projects" else project
            route.append("{}")
        else:
            route.append(part)
    return project, "/".join(route)


def request_of(event: dict[str, Any], key: str) -> dict[str, Any]:
    """What Powertools keys and validates on: the record is found by `scope`, and the request that
    made it is told apart by `request` (method, path, and the body's SHA-256, as sent)."""
    path = event.get("rawPath") or event["requestContext"]["http"]["path"]
    body = (event.get("body") or "").encode()
    project, route = scope(path)
    return {
        "scope": [project, route, key],
        "request": {
            "method": event["requestContext"]["http"]["method"],
            "path": path,
            "body": hashlib.sha256(body).hexdigest(),
            "base64": bool(event.get("isBase64Encoded")),
        },
    }


class _NotKept(Exception):
    """Carries an answer that is not kept through Powertools, which then deletes the in-progress record."""

    def __init__(self, answer: Answer):
        super().__init__(answer.get("statusCode"))
        self.answer = answer


def _replayed(response: Any, idempotent_data: DataRecord) -> Any:
    return {**response, "headers": {**response.get("headers", {}), REPLAYED: "true"}}


def error_answer(error: ArtregError, headers: dict[str, str] | None = None) -> Answer:
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, details=error.details))
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


class IdempotentPosts:
    """Wraps a resolver's `resolve`: POSTs with an `Idempotency-Key` go through `persistence`, the rest
    straight through. One request at a time per instance, as a resolver is (the config holds the
    request's Lambda context, from which the in-progress record's expiry is taken)."""

    def __init__(
        self,
        persistence: BasePersistenceLayer | Callable[[], BasePersistenceLayer],
        *,
        ttl_seconds: int = TTL_SECONDS,
    ):
        # a factory is called at the first keyed POST: Powertools' DynamoDB layer makes its boto3
        # client when built (~0.1 s), which a cold start that only reads should not pay at import
        self._persistence = persistence
        self._ttl_seconds = ttl_seconds

    @cached_property
    def config(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="scope",
            payload_validation_jmespath="request",
            expires_after_seconds=self._ttl_seconds,
            hash_function="sha256",
            response_hook=_replayed,
        )

    @cached_property
    def persistence(self) -> BasePersistenceLayer:
        from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

        made = self._persistence
        return made if isinstance(made, BasePersistenceLayer) else made()

    def resolve(self, resolve: Resolve, event: dict[str, Any], context: LambdaContext) -> Answer:
        headers = event.get("headers") or {}
        key = headers.get(HEADER)
        if event["requestContext"]["http"]["method"] != "POST" or key is None:
            return resolve(event, context)
        if not _KEY.fullmatch(key):
            return error_answer(
                Invalid(
                    "Idempotency-Key must be 1-255 printable ASCII characters",
                    details={"field": "Idempotency-Key"},
                )
            )
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        self.config.register_lambda_context(context)

        @idempotent_function(
            data_keyword_argument="request",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )
        def first(request: dict[str, Any]) -> Answer:
            answer = resolve(event, context)
            if not kept(int(answer["statusCode"])):
                raise _NotKept(answer)
            kept_headers = {k: v for k, v in (answer.get("headers") or {}).items() if k.lower() in KEPT_HEADERS}
            return {**answer, "headers": kept_headers, "cookies": []}

        try:
            answer: Answer = first(request=request_of(event, key))
        except _NotKept as not_kept:
            return not_kept.answer
        except IdempotencyValidationError:
            return error_answer(
                KeyReused(
                    "this Idempotency-Key was sent with another request; use a new key for a new call",
                    details={"field": "Idempotency-Key"},
                ),
            )
        except IdempotencyAlreadyInProgressError:
            return error_answer(
                Conflict("a request with this Idempotency-Key is still being handled", code="idempotency_in_progress"),
                {"Retry-After": "1"},
            )
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError):  # the records, not the call
            return error_answer(Retryable("could not record the Idempotency-Key now; retry"), {"Retry-After": "1"})
        return answer
