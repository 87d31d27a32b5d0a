"""The Python SDK of artreg: `Registry`, `Artifact`, `LoggedArtifact`, and the exceptions it raises
(the domain errors of `artreg.model.errors`, one class per status of API.md's error body)."""

from __future__ import annotations

from artreg.client.errors import (
    ArtregError,
    Conflict,
    Forbidden,
    IntegrityError,
    Invalid,
    NotFound,
    PreconditionFailed,
    Retryable,
    StreamBroken,
    Throttled,
    TooLarge,
    Unreachable,
)
from artreg.client.http import RetryPolicy
from artreg.client.registry import UNSET, Artifact, DownloadResult, LoggedArtifact, Registry, split_ref
from artreg.client.transfer import BlobCache

__all__ = [
    "UNSET",
    "Artifact",
    "ArtregError",
    "BlobCache",
    "Conflict",
    "DownloadResult",
    "Forbidden",
    "IntegrityError",
    "Invalid",
    "LoggedArtifact",
    "NotFound",
    "PreconditionFailed",
    "Registry",
    "RetryPolicy",
    "Retryable",
    "StreamBroken",
    "Throttled",
    "TooLarge",
    "Unreachable",
    "split_ref",
]
