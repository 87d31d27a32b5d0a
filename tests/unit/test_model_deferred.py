"""artreg's deferred pydantic models built at once, before a process validates on many threads
(artreg.model.deferred): pydantic's first build of a deferred model is not thread-safe."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import pydantic
from artreg.model import deferred
built = deferred.build_all()
from artreg.model.manifest import ENTRIES

def models(base):
    for sub in base.__subclasses__():
        yield sub
        yield from models(sub)

ours = [m for m in models(pydantic.BaseModel) if m.__module__.startswith("artreg.")]
left = sorted(m.__qualname__ for m in ours if not m.__pydantic_complete__)
print(built, left, ENTRIES.pydantic_complete)
"""


def test_a_process_that_builds_its_models_first_leaves_none_to_build_on_a_thread() -> None:
    # Given a fresh process, whose artreg models are all deferred (a cold start builds none of them)
    # When it builds them all, as `artreg server` does before its first request
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    # Then it built some, and no artreg model, nor the manifest's entries, is left to build on first use
    assert int(out[0]) > 0
    assert out[1].strip() == "[] True"
