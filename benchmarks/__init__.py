"""The performance suite. `python -m benchmarks [name ...]` runs benchmarks, prints their figures and
the command that reproduces them, and records them in `benchmarks/RESULTS.md`, one section each.
No test asserts a wall-clock time."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by `python -m benchmarks <name>` (a `--quick` run records nothing) and "
    "replaced by its next run.\n"
)


@dataclass(frozen=True)
class Options:
    """What `python -m benchmarks` was asked for. Each benchmark sizes itself from these."""

    quick: bool = False  # the smallest sizes, for the smoke test; nothing is recorded
    scale: float = 1.0  # multiplies each benchmark's default sizes
    commits: int | None = None  # commits per throughput row (aws-costs, contention)

    def size(self, full: int, quick: int) -> int:
        """`full` scaled, or `quick` for a smoke run; never below `quick`."""
        return quick if self.quick else max(quick, round(full * self.scale))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table, its columns padded so that it also reads as printed."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def environment() -> str:
    """When, where and on what code the figures were taken."""
    git = ["git", "-C", str(RESULTS.parent)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    # the results file itself is left out: a run of several benchmarks writes it as it goes
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", ".", f":!{RESULTS.name}", f":!*/{RESULTS.name}"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return "\n".join(
        [
            f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start",
            f"- Python {platform.python_version()} ({sys.implementation.name})",
            f"- git commit: {commit or 'unknown'}" + (" (working tree with uncommitted changes)" if dirty else ""),
        ]
    )


def record(name: str, section: str) -> None:
    """Writes `section` into RESULTS.md between this benchmark's markers, replacing what was there."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    block = f"{begin}\n{section.strip()}\n{end}\n"
    text = RESULTS.read_text() if RESULTS.exists() else _HEADER
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end) + "\n?", re.DOTALL)
    text, replaced = pattern.subn(lambda _: block, text)
    if not replaced:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text)
