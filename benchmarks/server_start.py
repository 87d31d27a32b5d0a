"""Start of `artreg server` to its first API answer, and its idle RSS: the last rows of `transfers`,
alone (the whole of `transfers` takes minutes), each start against a bare interpreter's start in
the same run, interleaved, since the machine's load moves both."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Options, table
from benchmarks.transfers import FIRST_ANSWER_TARGET_S, IDLE_RSS_TARGET_MIB, server_process

TITLE = "Start of artreg server to its first answer, and its idle RSS"


def _bare_start() -> float:
    """Seconds to start an interpreter and import nothing more (what no server can go under)."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - began


def run(options: Options) -> str:
    rounds = 2 if options.quick else 7
    firsts, bares, rss = [], [], 0
    with tempfile.TemporaryDirectory(prefix="artreg-server-start-") as folder:
        for attempt in range(rounds):
            bares.append(_bare_start())
            measured = server_process(Path(folder) / str(attempt), tries=1)
            firsts.append(measured.first_answer[0])
            rss = max(rss, measured.idle_rss_kib)
    first, bare = statistics.median(firsts), statistics.median(bares)
    rss_mib = rss / 1024
    rows = [
        [
            "start to first API answer",
            f"{first:.2f} s (of {', '.join(f'{s:.2f}' for s in sorted(firsts))})",
            f"{bare:.3f} s",
            f"<= {FIRST_ANSWER_TARGET_S:g} s",
            "met" if first <= FIRST_ANSWER_TARGET_S else "NOT met",
        ],
        [
            "idle RSS after it",
            f"{rss_mib:.1f} MiB",
            "",
            f"<= {IDLE_RSS_TARGET_MIB} MiB",
            "met" if rss_mib <= IDLE_RSS_TARGET_MIB else "NOT met",
        ],
    ]
    return "\n".join(
        [
            f"`artreg server` started {rounds} times on a fresh data folder, until it answers "
            "`GET /v1/projects/bench/artifacts` (median), and its VmRSS 2 s later (the largest); before each, "
            "a bare `python -c pass` (median), the floor that the machine's load sets.",
            "",
            table(["figure", "measured", "bare interpreter", "target", "verdict"], rows),
        ]
    )
