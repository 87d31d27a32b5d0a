"""What a Lambda function makes once and keeps for the life of its process: its import, and the
clients and modules of its first AWS call (artreg.aws.clients).

Such work makes tens of thousands of objects that live as long as the process (modules, classes,
botocore's and Powertools' tables) and almost no garbage: the collector's passes over them find nothing
and cost a cold start about 50 ms of CPU (benchmarks/cold_start.py). On Lambda the collector is off
while it runs, and what it made is frozen out of every later pass (gc.freeze). Elsewhere (the tests,
which import the handlers afresh many times, and the local server) nothing changes."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived() -> Iterator[None]:
    """On Lambda, runs the block with the collector off, then freezes what the process holds."""
    if not os.environ.get("LAMBDA_TASK_ROOT"):
        yield
        return
    enabled = gc.isenabled()  # a block inside another leaves the collector to the outer one
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
