"""Domain errors, shared by the registry (which raises them) and the SDK (which re-raises the
API's error bodies as them). Each carries the `code` of API.md's error body and its HTTP status."""

from __future__ import annotations

from typing import Any, ClassVar


class ArtregError(Exception):
    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after  # seconds: the answer's `Retry-After`, when the call may succeed later

    def __str__(self) -> str:
        return self.message


class Invalid(ArtregError, ValueError):
    """A request that breaks a rule of API.md. A ValueError too, so pydantic validators may raise it."""

    status = 400
    default_code = "invalid_request"


class Forbidden(ArtregError):
    status = 403
    default_code = "forbidden"


class NotFound(ArtregError):
    status = 404
    default_code = "not_found"


class Conflict(ArtregError):
    status = 409
    default_code = "conflict"


class KeyReused(ArtregError):
    """An `Idempotency-Key` sent again with a different request."""

    status = 422
    default_code = "idempotency_key_reused"


class MethodNotAllowed(ArtregError):
    """A method the route does not have; `details["allow"]` lists those it has (the `Allow` header)."""

    status = 405
    default_code = "method_not_allowed"


class PreconditionFailed(ArtregError):
    status = 412
    default_code = "precondition_failed"


class TooLarge(ArtregError):
    status = 413
    default_code = "too_large"


class UnsupportedMediaType(ArtregError):
    status = 415
    default_code = "unsupported_media_type"


class Retryable(ArtregError):
    """Back-end throttling or a transient failure: the client retries with backoff."""

    status = 503
    default_code = "unavailable"


class Throttled(Retryable):
    status = 429
    default_code = "throttled"


ERRORS_BY_STATUS: dict[int, type[ArtregError]] = {
    cls.status: cls
    for cls in (
        Invalid,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        KeyReused,
        TooLarge,
        UnsupportedMediaType,
        Throttled,
        Retryable,
    )
}
