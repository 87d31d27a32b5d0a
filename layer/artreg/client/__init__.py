"""The Python SDK of artreg: `Registry`, `Artifact`, `LoggedArtifact`, its settings, and the exceptions
it raises (the domain errors of `artreg.model.errors`, one class per status of API.md's error body).

This is the SDK's one public surface: `artreg` re-exports exactly these names (lazily)."""

from __future__ import annotations

from artreg.client.artifact import Artifact
from artreg.client.common import UNSET, split_ref
from artreg.client.errors import (
    ArtregError,
    Conflict,
    Forbidden,
    IntegrityError,
    Invalid,
    NotFound,
    PickleRefused,
    PreconditionFailed,
    Retryable,
    StreamBroken,
    Throttled,
    TooLarge,
    Unreachable,
)
from artreg.client.http import RetryPolicy
from artreg.client.logged import DownloadResult, LoggedArtifact
from artreg.client.registry import Registry
from artreg.client.settings import ClientSettings, load_settings
from artreg.client.transfer import BlobCache
from artreg.client.version import Version

__all__ = [
    "UNSET",
    "Artifact",
    "ArtregError",
    "BlobCache",
    "ClientSettings",
    "Conflict",
    "DownloadResult",
    "Forbidden",
    "IntegrityError",
    "Invalid",
    "LoggedArtifact",
    "NotFound",
    "PickleRefused",
    "PreconditionFailed",
    "Registry",
    "RetryPolicy",
    "Retryable",
    "StreamBroken",
    "Throttled",
    "TooLarge",
    "Unreachable",
    "Version",
    "load_settings",
    "split_ref",
]
