"""schemathesis run against a URL, as the suite and the README's longer run use it: every check on,
the settings of tests/fuzz/schemathesis.toml, cursors from tests/support/fuzz_hooks.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


def fuzz(
    url: str, *, max_examples: int, headers: dict[str, str] | None = None, exclude_checks: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The run's exit status and report; 0 only with no failure of any check."""
    command = [SCHEMATHESIS, "--config-file", str(ROOT / "tests/fuzz/schemathesis.toml"), "--no-color", "run"]
    command += [f"{url}/v1/openapi.json", "--checks", "all", "--max-examples", str(max_examples), "--seed", "1"]
    # an upload answer may carry 2,000 presigned part URLs: seconds of signing on a loaded machine
    command += ["--max-redirects", "0", "--workers", "1", "--output-truncate", "true", "--request-timeout", "120"]
    if exclude_checks:
        command += ["--exclude-checks", ",".join(exclude_checks)]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.fuzz_hooks", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
