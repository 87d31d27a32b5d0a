"""artreg: an ML artifact registry that runs in your own AWS account, or on one machine.

    from artreg import Registry, Artifact
    reg = Registry("http://127.0.0.1:8080", project="vision")

The names here are `artreg.client`'s (the SDK), re-exported. `import artreg` stays cheap: the SDK
(pydantic, urllib3) loads on first use of one of them (PEP 562), and botocore and tqdm only when
signing or drawing a progress bar.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# artreg.client.__all__ and __version__, spelled out so that reading it imports nothing (a unit test
# keeps the two equal)
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
    "__version__",
    "load_settings",
    "split_ref",
]
_SDK = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from artreg.client import (
        UNSET,
        Artifact,
        ArtregError,
        BlobCache,
        ClientSettings,
        Conflict,
        DownloadResult,
        Forbidden,
        IntegrityError,
        Invalid,
        LoggedArtifact,
        NotFound,
        PickleRefused,
        PreconditionFailed,
        Registry,
        Retryable,
        RetryPolicy,
        StreamBroken,
        Throttled,
        TooLarge,
        Unreachable,
        Version,
        load_settings,
        split_ref,
    )


def __getattr__(name: str) -> Any:
    if name not in _SDK:
        raise AttributeError(f"module 'artreg' has no attribute {name!r}")
    value = getattr(importlib.import_module("artreg.client"), name)
    globals()[name] = value  # the next lookup does not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_SDK})
