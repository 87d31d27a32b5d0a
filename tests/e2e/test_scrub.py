"""`artreg janitor --verify` on the local store, while the server runs: a blob corrupted on disk is
found and quarantined, so that curl no longer gets its bad bytes and the next log of the real file
uploads it again; temporary files that killed uploads left are removed once stale."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from tests.e2e.test_http import N, P, log_over_http
from tests.support.server import ARTREG, RunningServer

REAL = os.urandom(64 * 1024)


def _janitor(server: RunningServer, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [ARTREG, "janitor", "--data", str(server.data), *args],
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _curl(server: RunningServer, version: str) -> requests.Response:
    return requests.get(f"{server.url}/v1/resolve/{P}/{N}@{version}", params={"file": "model.bin"}, timeout=10)


def _blob_file(server: RunningServer, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return server.data / "blobs" / P / "blobs" / "sha256" / sha[:2] / sha


def test_a_corrupt_blob_is_quarantined_and_a_re_log_repairs_it(server: RunningServer) -> None:
    # Given a version logged over HTTP, and its blob corrupted on disk (same size, other bytes)
    log_over_http(server.url, REAL)
    blob = _blob_file(server, REAL)
    blob.write_bytes(bytes(len(REAL)))
    assert _curl(server, "1.0.0").content != REAL  # served as it is, until the janitor looks

    # When the janitor verifies the store
    report = _janitor(server, "--verify")

    # Then it found and quarantined the blob, and a curl user gets no bytes instead of bad ones
    assert report["verify"]["quarantined"] == 1
    assert _curl(server, "1.0.0").status_code == 404

    # When the real file is logged again
    entry = {"path": "model.bin", "size": len(REAL), "sha256": hashlib.sha256(REAL).hexdigest()}
    started = requests.post(f"{server.url}/v1/projects/{P}/artifacts/{N}/uploads", json={"files": [entry]}, timeout=10)
    assert [m["sha256"] for m in started.json()["missing"]] == [entry["sha256"]]
    log_over_http(server.url, REAL)

    # Then its bytes are uploaded and served again, by the old version and the new
    assert _curl(server, "1.0.0").content == REAL
    assert _curl(server, "2.0.0").content == REAL
    # And a second verification finds nothing wrong
    assert _janitor(server, "--verify")["verify"]["quarantined"] == 0


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(server: RunningServer) -> None:
    # Given what a killed upload left two days ago, and an upload in progress now
    log_over_http(server.url, REAL)
    folder = _blob_file(server, REAL).parent
    stale, fresh = folder / f".{'a' * 64}.x1.tmp", folder / f".{'b' * 64}.x2.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))

    # When the janitor runs
    report = _janitor(server)

    # Then only the stale one is gone, and the blob is untouched
    assert report["temporary_removed"] == 1
    assert not stale.exists()
    assert fresh.exists()
    assert _curl(server, "1.0.0").content == REAL
