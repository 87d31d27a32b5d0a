"""The local server driven over plain HTTP only, as curl or a deploy script would."""

from __future__ import annotations

import hashlib
import multiprocessing
from typing import Any

import requests

from tests.support.server import RunningServer

P, N = "vision", "resnet"


def log_over_http(url: str, data: bytes, session: requests.Session | None = None, **request: Any) -> dict[str, Any]:
    http = session or requests.Session()
    base = f"{url}/v1/projects/{P}/artifacts/{N}"
    entry = {"path": "model.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    started = http.post(f"{base}/uploads", json={"files": [entry], **request}, timeout=30)
    started.raise_for_status()
    for missing in started.json()["missing"]:
        http.put(missing["url"], data=data, headers=missing["headers"], timeout=30).raise_for_status()
    committed = http.post(f"{base}/uploads/{started.json()['upload_id']}/commit", timeout=30)
    committed.raise_for_status()
    result: dict[str, Any] = committed.json()
    return result


def test_resolve_an_alias_and_follow_it_to_the_bytes(server: RunningServer) -> None:
    # Given a version logged over HTTP, holding staging
    log_over_http(server.url, b"the weights", aliases=["staging"])
    # When a deploy script resolves name@alias with ?file=, and follows the redirect
    first = requests.get(
        f"{server.url}/v1/resolve/{P}/{N}@staging", params={"file": "model.bin"}, allow_redirects=False, timeout=10
    )
    second = requests.get(first.headers["Location"], timeout=10)
    # Then two requests gave the bytes, and the first said which version it resolved
    assert first.status_code == 302
    assert first.headers["X-Artifact-Version"] == "1.0.0"
    assert second.content == b"the weights"


def test_a_blob_url_refuses_other_bytes_and_tampering(server: RunningServer) -> None:
    # Given an upload's signed PUT URL
    entry = {"path": "a", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()}
    started = requests.post(
        f"{server.url}/v1/projects/{P}/artifacts/{N}/uploads", json={"files": [entry]}, timeout=10
    ).json()
    url = started["missing"][0]["url"]
    # When other bytes are PUT, or the URL's size is changed
    wrong = requests.put(url, data=b"HELLO", timeout=10)
    tampered = requests.put(url.replace("size=5", "size=6"), data=b"hello!", timeout=10)
    # Then both are refused with the error body, and the commit finds the blob missing
    assert wrong.status_code == 400
    assert tampered.status_code == 403
    assert tampered.json()["error"]["code"] == "signature_mismatch"
    commit = requests.post(
        f"{server.url}/v1/projects/{P}/artifacts/{N}/uploads/{started['upload_id']}/commit", timeout=10
    )
    assert (commit.status_code, commit.json()["error"]["code"]) == (409, "blobs_missing")


def test_data_survives_a_restart(server: RunningServer) -> None:
    log_over_http(server.url, b"v1")
    server.stop()
    server.start()
    assert requests.get(f"{server.url}/v1/resolve/{P}/{N}@latest", timeout=10).json()["version"] == "1.0.0"


def _writer(url: str, count: int, number: int) -> list[str]:
    session = requests.Session()
    return [log_over_http(url, f"{number}-{i}".encode(), session)["version"] for i in range(count)]


def test_concurrent_processes_commit_unique_gapless_versions(server: RunningServer) -> None:
    # Given 8 processes, each committing 25 versions of one artifact over HTTP
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        batches = pool.starmap(_writer, [(server.url, 25, n) for n in range(8)])
    # Then the 200 versions are 1.0.0 to 200.0.0, each once
    versions = sorted(int(v.split(".")[0]) for batch in batches for v in batch)
    assert versions == list(range(1, 201))
    assert requests.get(f"{server.url}/v1/projects/{P}/artifacts/{N}", timeout=10).json()["version_count"] == 200
