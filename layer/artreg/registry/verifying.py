"""The one rule of what a commit makes of the blobs a store does not hold trusted: a blob whose
verification is under way (started within `Policy.verify_window`) is waited for, `409 blobs_verifying`
with `Retry-After`; any other is missing, `409 blobs_missing`, which wins, since the client has bytes to
send. A verification older than the window failed somewhere (its function gave up): that blob is
missing too, so that the client sends it again and a new verification starts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from artreg.model.errors import Conflict
from artreg.registry.records import UnsettledBlob

# what the Retry-After of `blobs_verifying` is estimated from: a conservative rate of the verifier's
# ranged reads and hashing, and bounds that keep a client neither spinning nor idle for long
HASH_BYTES_PER_S = 100 * 1024**2
MIN_RETRY_S, MAX_RETRY_S = 5, 60


def check_stored(unsettled: Sequence[UnsettledBlob], now: datetime, window: timedelta) -> None:
    """Raises the conflict a commit answers when `unsettled` (what `BlobStore.verify` found) is not empty."""
    verifying = [b for b in unsettled if b.verifying_since is not None and now - b.verifying_since < window]
    missing = [b for b in unsettled if b not in verifying]
    if missing:
        raise Conflict(
            f"{len(missing)} blob(s) are not stored with the stated size and SHA-256; upload them and commit again",
            code="blobs_missing",
            details={"missing": [{"sha256": b.sha256, "size": b.size} for b in missing]},
        )
    if verifying:
        seconds = math.ceil(sum(b.size for b in verifying) / HASH_BYTES_PER_S)
        raise Conflict(
            f"{len(verifying)} blob(s) are stored and their SHA-256 is being verified; commit again later",
            code="blobs_verifying",
            details={
                "verifying": [
                    {"sha256": b.sha256, "size": b.size, "since": b.verifying_since.isoformat()}
                    for b in verifying
                    if b.verifying_since is not None
                ]
            },
            retry_after=min(MAX_RETRY_S, max(MIN_RETRY_S, seconds)),
        )
