"""The SDK's exceptions: the domain errors of `artreg.model.errors` (one class per status of API.md),
raised from the error body of an answer, plus two that only a client meets."""

from __future__ import annotations

import json
from typing import Any

from artreg.model.errors import (
    ERRORS_BY_STATUS,
    ArtregError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PreconditionFailed,
    Retryable,
    Throttled,
    TooLarge,
)

__all__ = [
    "ArtregError",
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "Invalid",
    "NotFound",
    "PickleRefused",
    "PreconditionFailed",
    "Retryable",
    "StreamBroken",
    "Throttled",
    "TooLarge",
    "Unreachable",
    "error_from_answer",
]


class PickleRefused(ArtregError):
    """Saving or loading an object would pickle or unpickle it, and the caller did not allow it:
    unpickling runs whatever code the pickle's writer put in it."""

    default_code = "pickle_refused"


class Unreachable(Retryable):
    """The registry or the blob store could not be reached (refused, dropped, timed out), after retries."""

    default_code = "unreachable"


class StreamBroken(Unreachable):
    """A download that broke off after its first bytes: the caller starts that file over."""

    default_code = "stream_broken"


class IntegrityError(ArtregError):
    """Bytes that do not have the size and SHA-256 the manifest states."""

    default_code = "checksum_mismatch"


_RETRYABLE_STATUSES = frozenset({502, 503, 504})


def error_from_answer(status: int, data: bytes, *, what: str = "", retry_after: float | None = None) -> ArtregError:
    """The exception for an answer of status >= 400: the class of its status, with the `code`,
    `message` and `details` of API.md's error body when there is one, and its `Retry-After`. Bodies
    that are not ours (API Gateway's `{"message": ...}`, S3's XML) keep the status's class and a
    message from the text."""
    code: str | None = None
    details: dict[str, Any] = {}
    message = ""
    try:
        body = json.loads(data) if data else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), str) else None
        message = str(error.get("message") or "")
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
    elif isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]  # API Gateway's own answers (missing auth, throttling, ...)
    elif data:
        message = data[:300].decode("utf-8", "replace").strip()
    if status == 401:
        cls: type[ArtregError] = Forbidden
        code = code or "unauthorized"
    else:
        cls = ERRORS_BY_STATUS.get(status) or (Retryable if status in _RETRYABLE_STATUSES else ArtregError)
    if not message:
        message = f"HTTP {status}" + (f" from {what}" if what else "")
    return cls(message, code=code, details=details, retry_after=retry_after)
