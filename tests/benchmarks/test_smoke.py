"""Every benchmark runs at its smallest size (`--quick`), so that none of them rots. Nothing here
asserts a time: the figures are the benchmarks' business, and this machine is shared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_at_its_smallest_size_and_prints_its_figures(name: str) -> None:
    results = (ROOT / "benchmarks" / "RESULTS.md").read_bytes()

    run = subprocess.run(
        [sys.executable, "-m", "benchmarks", name, "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    assert f"## {name}: " in run.stdout
    assert "| " in run.stdout, "a table of figures"
    assert f"Reproduce: python -m benchmarks {name} --quick" in run.stdout
    assert (ROOT / "benchmarks" / "RESULTS.md").read_bytes() == results, "--quick records nothing"
