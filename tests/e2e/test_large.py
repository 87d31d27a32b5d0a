"""A 1 GiB file through `artreg server`: logged (as a multipart upload over HTTP: the local server's
threshold is 512 MiB, and its handoff socket is off, as for a client on another machine) and
downloaded by child processes running the SDK, each reporting its own peak RSS, which must stay flat;
then logged again, which sends nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.files import sha256_of, write_random
from tests.support.server import RunningServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MiB = 1024**2
GiB = 1024**3
SIZE = 1 * GiB
PARTS = SIZE // (64 * MiB)  # the local server's part size
RSS_LIMIT_MIB = 250

# A job as a user writes one: the SDK with its requests counted (tests/e2e/counting.py); it prints
# what it did, its duration and its own peak RSS as one JSON line. The peak is VmHWM, the high-water
# mark of the process's own memory since it started: on Linux, ru_maxrss (KiB) also carries the RSS
# of the parent that forked it (here pytest, itself over 100 MiB), so it is reported beside, not used.
CHILD = r"""
import json, resource, sys, time
from artreg.client import Artifact
from tests.e2e.counting import counted_registry


def own_peak_rss_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

action, url, path, cache = sys.argv[1:5]
reg, pool = counted_registry(url, cache)
started = time.monotonic()
if action == "log":
    logged = reg.log_artifact(Artifact("big", type="dataset").add(path, "big.bin"))
    outcome = {"version": logged.version, "sha256": logged.files[0].sha256, "size": logged.size}
elif action == "download":
    result = reg.download("big", "1.0.0", path)
    outcome = {"version": result.version, "downloaded": result.downloaded, "bytes_fetched": result.bytes}
else:
    outcome = {}
outcome.update(pool.summary())
outcome["seconds"] = round(time.monotonic() - started, 2)
outcome["peak_rss_mib"] = round(own_peak_rss_kib() / 1024, 1)
outcome["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(outcome))
"""


def run_child(action: str, server: RunningServer, path: Path, cache: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, server.url, str(path), str(cache)],
        cwd=REPO,
        env={**os.environ, "ARTREG_PROGRESS": "0"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"the {action} job failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_1_gib_file_logs_and_downloads_in_flat_memory(
    server: RunningServer, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    free = shutil.disk_usage(tmp_path).free
    if free < 4 * GiB:
        pytest.skip(f"needs 4 GiB free under {tmp_path} (source, stored blob, parts, download); {free / GiB:.1f} GiB")

    # Given a server without its handoff socket (a client on its machine would hand the file off)
    server.stop()
    server.env["ARTREG_HANDOFF"] = "0"
    server.start()
    # And a 1 GiB file
    source = tmp_path / "big.bin"
    expected = write_random(source, SIZE)
    cache = tmp_path / "cache"
    baseline = run_child("idle", server, source, cache)

    # When a job logs it
    logged = run_child("log", server, source, cache)

    # Then it is version 1.0.0, sent once as a multipart upload of 64 MiB parts, in flat memory
    assert (logged["version"], logged["sha256"], logged["size"]) == ("1.0.0", expected, SIZE)
    assert logged["blob_bytes_sent"] == SIZE
    assert (logged["part_puts"], logged["completions"]) == (PARTS, 1)
    assert logged["peak_rss_mib"] < RSS_LIMIT_MIB
    assert logged["peak_rss_mib"] - baseline["peak_rss_mib"] < 64, "grew by a part's size: a part was held in memory"

    # When another job downloads it into a new folder
    downloaded = run_child("download", server, tmp_path / "out", cache)

    # Then the file has every byte, fetched once, and memory stayed flat
    assert (downloaded["version"], downloaded["downloaded"], downloaded["bytes_fetched"]) == ("1.0.0", 1, SIZE)
    assert sha256_of(tmp_path / "out" / "big.bin") == expected
    assert downloaded["peak_rss_mib"] < RSS_LIMIT_MIB
    assert downloaded["peak_rss_mib"] - baseline["peak_rss_mib"] < 64

    # When the same content is logged again
    relogged = run_child("log", server, source, cache)

    # Then a new version is committed in one request with no byte sent, much faster than the first
    assert relogged["version"] == "2.0.0"
    assert (relogged["blob_bytes_sent"], relogged["blob_requests"]) == (0, 0)
    assert relogged["requests"] <= 2
    assert relogged["seconds"] < logged["seconds"]

    figures = {
        "peak_rss_mib_after_imports": baseline["peak_rss_mib"],
        "peak_rss_mib_log_1gib": logged["peak_rss_mib"],
        "peak_rss_mib_download_1gib": downloaded["peak_rss_mib"],
        "peak_rss_mib_relog_1gib": relogged["peak_rss_mib"],
        "ru_maxrss_mib_log_1gib": logged["ru_maxrss_mib"],
        "ru_maxrss_mib_download_1gib": downloaded["ru_maxrss_mib"],
        "seconds_log_1gib": logged["seconds"],
        "seconds_download_1gib": downloaded["seconds"],
        "seconds_relog_unchanged": relogged["seconds"],
        "requests_relog_unchanged": relogged["requests"],
    }
    for key, value in figures.items():
        record_property(key, value)
    print(f"\n1 GiB through artreg server: {json.dumps(figures)}")
