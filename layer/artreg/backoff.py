"""How long to wait before a retry: exponential backoff with jitter, the one rule every retry loop of
artreg uses (commits that lost a race, the SDK's requests, PutEvents, the local webhook)."""

from __future__ import annotations

import random


def jittered(attempt: int, base: float, cap: float, *, floor: float = 0.0) -> float:
    """Uniform in [floor * d, d] with d = min(cap, base * 2**attempt). `floor=0` is "full jitter", which
    spreads racing writers furthest apart; `floor=0.5` ("equal jitter") keeps a minimum pause."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return random.uniform(floor * ceiling, ceiling)
