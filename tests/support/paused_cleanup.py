"""`artreg server` that stops, once, in the middle of removing what is left of a completed multipart
upload (its parts' records, `<n>.etag`, once their data file became the blob), and waits there to be
killed: so that a crash test's kill lands inside that clean-up every time, not by chance. Run as
`python -m tests.support.paused_cleanup server ...`, with PAUSED_CLEANUP_MARKER naming a file that it
writes when it is paused there (and that, once it exists, lets a restarted server clean up as usual)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from artreg.cli import main

MARKER = "PAUSED_CLEANUP_MARKER"


def _pause_once_in_rmtree(marker: Path) -> None:
    real_rmtree = shutil.rmtree

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        folder = Path(path)
        # local/blobs.py moves a completed upload's data file to the blob, renames its folder to
        # `.<id>.done`, then removes it
        if folder.name.endswith(".done") and not marker.exists():
            records = sorted(folder.glob("*.etag"))
            if not records:
                raise AssertionError(f"no part records in {folder}: local/blobs.py's layout changed")
            records[0].unlink()  # one part's record gone, the others still there
            marker.write_text(str(folder))
            while True:  # until SIGKILL
                time.sleep(1)
        real_rmtree(path, *args, **kwargs)

    shutil.rmtree = rmtree  # type: ignore[assignment]


if __name__ == "__main__":
    _pause_once_in_rmtree(Path(os.environ[MARKER]))
    sys.exit(main(sys.argv[1:]))
