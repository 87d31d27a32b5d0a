"""The Python SDK of artreg: `Registry`, `Artifact`, `LoggedArtifact`, its settings, and the exceptions
it raises (the domain errors of `artreg.model.errors`, one class per status of API.md's error body).

This is the SDK's one public surface: `artreg` re-exports exactly these names (lazily). Each is imported
from its module on first use (PEP 562), so that what needs one piece (`artreg server` reads only the
settings) does not import the whole SDK (urllib3 and the rest: ~0.2 s)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# each public name, and the module that defines it
_HOMES = {
    "Artifact": "artifact",
    "UNSET": "common",
    "split_ref": "common",
    **dict.fromkeys(
        [
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
        ],
        "errors",
    ),
    "RetryPolicy": "http",
    "DownloadResult": "logged",
    "LoggedArtifact": "logged",
    "Registry": "registry",
    "ClientSettings": "settings",
    "load_settings": "settings",
    "BlobCache": "transfer",
    "Version": "version",
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'artreg.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"artreg.client.{home}"), name)
    globals()[name] = value  # the next lookup does not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
