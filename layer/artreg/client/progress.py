"""Byte progress bars on stderr: drawn with tqdm (imported only when one is drawn), only when stderr
is a terminal and `progress=False` (the SDK's `progress` setting, ARTREG_PROGRESS=0) did not turn them off."""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any, Protocol


class Progress(Protocol):
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


class NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    """A tqdm bar that many worker threads update."""

    def __init__(self, total: int | None, desc: str) -> None:
        tqdm: Any = importlib.import_module("tqdm").tqdm
        self._lock = threading.Lock()
        self._bar = tqdm(
            total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False
        )

    def update(self, n: int) -> None:
        with self._lock:
            self._bar.update(n)

    def close(self) -> None:
        with self._lock:
            self._bar.close()


def enabled(requested: bool | None = None) -> bool:
    if requested is False:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def bar(total: int, desc: str, requested: bool | None = None) -> Progress:
    return _Bar(total, desc) if total > 0 and enabled(requested) else NoProgress()


def unsized(desc: str, requested: bool | None = None) -> Progress:
    """A bar of bytes whose total is not known beforehand (files that are walked as they are sent)."""
    return _Bar(None, desc) if enabled(requested) else NoProgress()
