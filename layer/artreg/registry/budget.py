"""How much work one janitor run may do: a step of a walk asks before each bounded item of work
(a page of versions, a page of blobs) and stops, after saving its checkpoint, once told no."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Budget(Protocol):
    def take(self) -> bool:
        """True if one more item of work may start."""
        ...


class Unlimited:
    def take(self) -> bool:
        return True


class TimeBudget:
    """Until `seconds` from now (on Lambda: its remaining time less a margin that covers the last
    item and the checkpoint's write)."""

    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.deadline = monotonic() + seconds

    def take(self) -> bool:
        return self.monotonic() < self.deadline


class ItemBudget:
    """At most `items` items: a walk cut into steps as small as a test wants."""

    def __init__(self, items: int) -> None:
        self.left = items

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0
