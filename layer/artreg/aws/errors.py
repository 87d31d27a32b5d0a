"""botocore's ClientError codes, turned into the registry's domain errors."""

from __future__ import annotations

from botocore.exceptions import ClientError

from artreg.model.errors import ArtregError, Conflict, Forbidden, NotFound, Retryable, Throttled

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
}
_UNAVAILABLE = {"InternalServerError", "ServiceUnavailable", "InternalError", "RequestTimeout"}


def translate(error: ClientError) -> ArtregError:
    code = error.response.get("Error", {}).get("Code", "")
    if code in _THROTTLED:
        return Throttled("the storage back end is throttling requests; retry with backoff", details={"aws": code})
    if code in _UNAVAILABLE:
        return Retryable("the storage back end is unavailable; retry with backoff", details={"aws": code})
    if code == "ConditionalCheckFailedException":
        return Conflict("the item changed while it was being written; retry", details={"aws": code})
    if code in {"NoSuchKey", "NoSuchUpload", "404", "NotFound"}:
        return NotFound("the object does not exist", details={"aws": code})
    if code in {"AccessDenied", "403"}:
        return Forbidden("the registry is not allowed to read this object", details={"aws": code})
    # a request the back end refused as malformed is a defect of ours, not of the caller: a 500
    message = error.response.get("Error", {}).get("Message", "")
    return ArtregError(f"storage back end error {code}", details={"aws": code, "aws_message": message[:500]})
