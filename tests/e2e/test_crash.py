"""`artreg server` killed with SIGKILL (no shutdown, no flush) and started again on the same port and
data folder: no committed version is lost, and an SDK log that was uploading when it died completes
through its retries."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from artreg.client import Artifact, LoggedArtifact, RetryPolicy
from tests.e2e.counting import counted_registry
from tests.support.files import sha256_of, write_random
from tests.support.paused_cleanup import MARKER
from tests.support.server import RunningServer
from tests.support.template import REPO_ROOT

MiB = 1024**2
# enough tries, and time, to wait out a restart (the server takes a second or so to start)
PATIENT = RetryPolicy(attempts=60, base_delay=0.1, max_delay=1.0, deadline=120.0)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def partial_upload_bytes(data: Path) -> int:
    """Bytes in the files that the server writes a blob (a temporary file) or parts (a multipart
    upload's data file, written in place) into before it checks them."""
    total = 0
    for temp in [*(data / "blobs").rglob("*.tmp"), *(data / "blobs").glob("*/multipart/*/data")]:
        with contextlib.suppress(FileNotFoundError):  # installed or removed meanwhile
            total += temp.stat().st_blocks * 512  # written bytes: the data file is sparse until whole
    return total


def stored_blob(data: Path, sha256: str) -> Path:
    """Where the server keeps a blob once it is whole and checked (local/blobs.py's layout)."""
    return data / "blobs" / "vision" / "blobs" / "sha256" / sha256[:2] / sha256


def half_cleaned_multipart(data: Path, parts: int) -> bool:
    """Whether a multipart upload's folder is left with some of its parts gone: the server was killed
    while it removed them after joining them into the blob."""
    folders = [f for f in (data / "blobs" / "vision" / "multipart").glob("*") if f.is_dir()]
    return any(len(list(f.glob("*.etag"))) < parts for f in folders)


def versions_over_http(server: RunningServer, name: str) -> list[str]:
    answer = requests.get(f"{server.url}/v1/projects/vision/artifacts/{name}/versions", timeout=10)
    answer.raise_for_status()
    return [item["version"] for item in answer.json()["items"]]


@pytest.mark.slow
def test_a_kill_during_an_upload_loses_nothing_and_the_retry_completes_the_log(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given a server that takes files over 64 MiB in parts, as S3 does (its own default is higher), over
    # HTTP: without the handoff socket, which a client on its machine would hand the file to instead
    server.stop()
    server.env.update(ARTREG_MULTIPART_THRESHOLD=str(64 * MiB), ARTREG_HANDOFF="0")
    server.start()
    # And version 1.0.0 committed
    reg, pool = counted_registry(server.url, tmp_path / "cache", retry=PATIENT)
    small = tmp_path / "v1.bin"
    small.write_bytes(os.urandom(MiB))
    first = reg.log_artifact(Artifact("resnet", type="model").add(small, "model.bin"))
    assert first.version == "1.0.0"
    # and a 200 MiB file being logged in a thread (a multipart upload of 4 parts)
    big = tmp_path / "v2.bin"
    expected = write_random(big, 200 * MiB)
    pool.reset()
    outcome: dict[str, LoggedArtifact | BaseException] = {}

    def log() -> None:
        try:
            outcome["logged"] = reg.log_artifact(Artifact("resnet", type="model").add(big, "model.bin"))
        except BaseException as error:
            outcome["error"] = error

    uploading = threading.Thread(target=log, daemon=True)
    uploading.start()

    # When the server is killed while the bytes flow
    wait_for(lambda: partial_upload_bytes(server.data) >= 16 * MiB, 60, "the upload to reach the server")
    server.kill()
    assert uploading.is_alive(), "the log finished before the kill: nothing was tested"
    # and started again on the same port and data folder
    server.start()

    # Then the log completes, as version 2.0.0, after retrying what the kill broke
    uploading.join(timeout=180)
    assert not uploading.is_alive(), "the log did not complete"
    assert "error" not in outcome, repr(outcome.get("error"))
    logged = outcome["logged"]
    assert isinstance(logged, LoggedArtifact)
    assert (logged.version, logged.files[0].sha256) == ("2.0.0", expected)
    part_puts = [s for s in pool.sent if s.is_part and s.method == "PUT"]
    assert len(part_puts) > 4, "no part was sent again: the kill did not interrupt the upload"
    # and 1.0.0 is intact, 2.0.0 holds the big file, and exactly those two versions exist
    assert reg.download("resnet", "1.0.0", tmp_path / "one", cache=False).downloaded == 1
    assert (tmp_path / "one" / "model.bin").read_bytes() == small.read_bytes()
    assert reg.get_artifact("resnet", "1.0.0").digest == first.digest
    reg.download("resnet", "2.0.0", tmp_path / "two", cache=False)
    assert sha256_of(tmp_path / "two" / "model.bin") == expected
    assert versions_over_http(server, "resnet") == ["2.0.0", "1.0.0"]


@pytest.mark.slow
def test_a_kill_while_the_server_finishes_a_multipart_upload_does_not_fail_the_log(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given a server that takes files over 64 MiB in parts (over HTTP: no handoff socket), and that stops
    # half-way through removing the parts once it has joined them into the blob (so that the kill lands
    # there, not by chance)
    marker = tmp_path / "paused-in-cleanup"
    server.stop()
    path = os.pathsep.join(p for p in (str(REPO_ROOT), server.env.get("PYTHONPATH")) if p)
    env = {"ARTREG_MULTIPART_THRESHOLD": str(64 * MiB), "ARTREG_HANDOFF": "0", MARKER: str(marker), "PYTHONPATH": path}
    server.env.update(env)
    server.command = [sys.executable, "-m", "tests.support.paused_cleanup"]
    server.start()
    reg, _ = counted_registry(server.url, tmp_path / "cache", retry=PATIENT)
    # and a 200 MiB file (4 parts) being logged
    source = tmp_path / "model.bin"
    expected = write_random(source, 200 * MiB)
    outcome: dict[str, LoggedArtifact | BaseException] = {}

    def log() -> None:
        try:
            outcome["logged"] = reg.log_artifact(Artifact("resnet", type="model").add(source))
        except BaseException as error:
            outcome["error"] = error

    uploading = threading.Thread(target=log, daemon=True)
    uploading.start()

    # When the server is killed inside that clean-up, and started again
    wait_for(marker.exists, 120, "the server to reach the clean-up of the parts")
    assert stored_blob(server.data, expected).exists()
    server.kill()
    assert half_cleaned_multipart(server.data, parts=4), "the kill did not land inside the clean-up"
    assert uploading.is_alive(), "the log finished before the kill: nothing was tested"
    server.start()

    # Then the log completes, with the file's bytes
    uploading.join(timeout=180)
    assert not uploading.is_alive(), "the log did not complete"
    assert "error" not in outcome, f"the log failed: {outcome.get('error')!r}"
    logged = outcome["logged"]
    assert isinstance(logged, LoggedArtifact)
    assert (logged.version, logged.files[0].sha256) == ("1.0.0", expected)
    assert versions_over_http(server, "resnet") == ["1.0.0"]


@pytest.mark.parametrize("restarts", [1, 3])
def test_a_kill_right_after_a_commit_keeps_the_version(server: RunningServer, tmp_path: Path, restarts: int) -> None:
    # Given a version committed by a run, an alias moved and a usage recorded, each answered
    reg, _ = counted_registry(server.url, tmp_path / "cache", retry=PATIENT)
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(256 * 1024))
    logged = reg.log_artifact(Artifact("resnet", type="model").add(source), run_id="run-42")
    reg.set_alias("resnet", "production", logged.version)
    reg.use_artifact("resnet@production", run_id="run-43")

    # When the server is killed at once, and started again (more than once)
    for _ in range(restarts):
        server.kill()
        server.start()

    # Then the version, its alias, its lineage and its bytes are there
    assert versions_over_http(server, "resnet") == ["1.0.0"]
    assert reg.get_artifact("resnet@production").digest == logged.digest
    for run_id, kind in (("run-42", "produced"), ("run-43", "used")):
        run = requests.get(f"{server.url}/v1/projects/vision/runs/{run_id}", timeout=10)
        assert (run.status_code, run.json().get(kind)) == (200, ["resnet@1.0.0"]), run.text
    reg.download("resnet@production", root=tmp_path / "out", cache=False)
    assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()
    # and the next log takes the next number
    assert reg.log_artifact(Artifact("resnet", type="model").add(source)).version == "2.0.0"
