"""The SDK's manifest cache shared by the logs of one machine: a log's staged manifest is its own until
it is kept, whatever other logs open the cache meanwhile; only a killed log's rows are cleared."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from artreg.client.files import HashedFile
from artreg.client.manifests import ManifestCache

FILES = 1_200  # more than one statement's worth of rows (1,000), as a dataset's manifest is


def _file(i: int) -> HashedFile:
    return HashedFile(f"part-{i:05d}.txt", f"/data/part-{i:05d}.txt", f"{i:064x}", 1)


def _rows(root: Path) -> int:
    with sqlite3.connect(ManifestCache(root).path) as db:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])


def test_a_log_opening_the_cache_leaves_another_logs_staged_manifest_whole(tmp_path: Path) -> None:
    # Given a log that has staged its manifest and not yet kept it (its upload is still going)
    with ManifestCache(tmp_path).staging() as staged:
        assert staged is not None
        for i in range(FILES):
            staged.add(_file(i))
        staged.close()

        # When another log on this machine opens the same cache (a cache of its own)
        other = ManifestCache(tmp_path)
        with other.staging() as theirs:
            assert theirs is not None

        # Then every row the first log staged is still there, to be kept under its version
        assert _rows(tmp_path) == FILES


KILLED_LOG = r"""
import sys, time
from artreg.client.files import HashedFile
from artreg.client.manifests import ManifestCache
with ManifestCache(sys.argv[1]).staging() as staged:
    for i in range(1200):
        staged.add(HashedFile(f"f{i:05d}", f"/d/f{i:05d}", f"{i:064x}", 1))
    staged.close()
    print("staged", flush=True)
    time.sleep(60)
"""


def test_the_rows_of_a_killed_log_are_cleared_by_the_next_opening(tmp_path: Path) -> None:
    # Given a log killed after staging its manifest
    log = subprocess.Popen([sys.executable, "-c", KILLED_LOG, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert log.stdout is not None
    assert log.stdout.readline().strip() == "staged"
    assert _rows(tmp_path) == FILES
    log.send_signal(signal.SIGKILL)
    log.wait()

    # When the cache is opened again
    with ManifestCache(tmp_path).staging() as staged:
        assert staged is not None

    # Then the killed log's rows are gone
    assert _rows(tmp_path) == 0
