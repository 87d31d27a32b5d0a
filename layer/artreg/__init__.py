"""artreg: an ML artifact registry that runs in your own AWS account, or on one machine.

    from artreg import Registry, Artifact
    reg = Registry("http://127.0.0.1:8080", project="vision")

`import artreg` stays cheap: the SDK (pydantic, urllib3) loads on first use of one of the names
below (PEP 562), and botocore and tqdm only when signing or drawing a progress bar.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Registry": "artreg.client.registry",
    "Artifact": "artreg.client.registry",
    "LoggedArtifact": "artreg.client.registry",
    "DownloadResult": "artreg.client.registry",
    "RetryPolicy": "artreg.client.http",
    "ArtregError": "artreg.model.errors",
    "Invalid": "artreg.model.errors",
    "Forbidden": "artreg.model.errors",
    "NotFound": "artreg.model.errors",
    "Conflict": "artreg.model.errors",
    "PreconditionFailed": "artreg.model.errors",
    "TooLarge": "artreg.model.errors",
    "Retryable": "artreg.model.errors",
    "Throttled": "artreg.model.errors",
    "Unreachable": "artreg.client.errors",
    "IntegrityError": "artreg.client.errors",
}

__all__ = [
    "Artifact",
    "ArtregError",
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
    "Throttled",
    "TooLarge",
    "Unreachable",
    "__version__",
]

if TYPE_CHECKING:
    from artreg.client.errors import IntegrityError, Unreachable
    from artreg.client.http import RetryPolicy
    from artreg.client.registry import Artifact, DownloadResult, LoggedArtifact, Registry
    from artreg.model.errors import (
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
