"""20,000 small files through `artreg server`: logged and downloaded by child processes running the
SDK (tests/support/files_job.py), each reporting its own peak RSS, which must stay within a bound
that one object kept per file would break; then logged again unchanged, which reads no file and
makes one request."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import files_job
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FILES = 20_000
# Above the idle process, what a log or a download may add: a batch or two of entries and answers, the
# thread pools, the hash cache's SQLite (measured: 22 MiB for a log, 9 for a download, the same at
# 10,000 files). 1.7 KiB kept per file (the issue measured 5 KiB) would add 33 MiB.
GROWTH_LIMIT_MIB = 32


def job(action: str, server: RunningServer, path: Path, cache: Path) -> dict[str, Any]:
    return files_job.run(action, server.url, path, cache, timeout=600)


def test_20000_files_log_and_download_in_flat_memory(
    server: RunningServer, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    # Given 20,000 files of 64 bytes in 100 folders, left alone for 2 s (as a dataset is before it is logged)
    data = tmp_path / "dataset"  # the server fixture keeps its own data in tmp_path / "data"
    for folder in range(100):
        (data / f"d{folder:02d}").mkdir(parents=True)
    for i in range(FILES):
        (data / f"d{i % 100:02d}" / f"f{i:05d}.bin").write_bytes(f"file {i}".ljust(64).encode())
    time.sleep(2.1)
    cache = tmp_path / "cache"
    idle = job("idle", server, data, cache)

    # When a job logs them
    logged = job("log", server, data, cache)

    # Then every file is in version 1.0.0, each blob sent once (in bundles of 250), in flat memory
    assert (logged["version"], logged["files"]) == ("1.0.0", FILES)
    assert (logged["blob_requests"], logged["blob_bytes_sent"]) == (FILES // 250, FILES * 64)
    assert logged["peak_rss_mib"] - idle["peak_rss_mib"] < GROWTH_LIMIT_MIB

    # When they are logged again unchanged with if_changed
    relogged = job("relog", server, data, cache)

    # Then nothing is made, in one request
    assert (relogged["version"], relogged["created"], relogged["requests"]) == ("1.0.0", False, 1)

    # When another job downloads the version into an empty folder with an empty cache
    out = tmp_path / "out"
    downloaded = job("download", server, out, tmp_path / "empty-cache")

    # Then every file is written, fetched once, in flat memory
    assert (downloaded["downloaded"], downloaded["bytes_fetched"]) == (FILES, FILES * 64)
    assert (out / "d07" / "f12307.bin").read_bytes() == "file 12307".ljust(64).encode()
    assert sum(1 for _ in out.rglob("*.bin")) == FILES
    assert downloaded["peak_rss_mib"] - idle["peak_rss_mib"] < GROWTH_LIMIT_MIB

    figures = {
        "peak_rss_mib_idle": idle["peak_rss_mib"],
        "peak_rss_mib_log_20000": logged["peak_rss_mib"],
        "peak_rss_mib_download_20000": downloaded["peak_rss_mib"],
        "seconds_log_20000": logged["seconds"],
        "seconds_relog_unchanged_20000": relogged["seconds"],
        "seconds_download_20000": downloaded["seconds"],
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\n20,000 files through artreg server: {json.dumps(figures)}")
