"""Bundles over HTTP: `artreg server` offers one signed request for many small blobs, besides each
blob's own URL; the SDK uses them for logs and downloads, and a client that ignores them (API.md's
shape) works as before."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import requests

from artreg.client import Artifact
from tests.e2e.counting import counted_registry
from tests.support.server import RunningServer

P, N = "vision", "shards"


def start(url: str, contents: list[bytes]) -> dict[str, Any]:
    files = [
        {"path": f"s/{i:04d}.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for i, data in enumerate(contents)
    ]
    answer = requests.post(f"{url}/v1/projects/{P}/artifacts/{N}/uploads", json={"files": files}, timeout=30)
    assert answer.status_code == 201, answer.text
    started: dict[str, Any] = answer.json()
    return started


def commit(url: str, upload_id: str) -> requests.Response:
    return requests.post(f"{url}/v1/projects/{P}/artifacts/{N}/uploads/{upload_id}/commit", timeout=30)


def missing_at_commit(url: str, upload_id: str) -> set[str]:
    answer = commit(url, upload_id)
    assert answer.status_code == 409, answer.text
    return {m["sha256"] for m in answer.json()["error"]["details"]["missing"]}


CONTENTS = [f"shard {i}".encode() * (i + 1) for i in range(5)]
SHAS = [hashlib.sha256(data).hexdigest() for data in CONTENTS]
BY_SHA = dict(zip(SHAS, CONTENTS, strict=True))


def test_a_client_that_ignores_bundles_logs_blob_by_blob(server: RunningServer) -> None:
    # Given an upload whose answer offers a bundle, and a URL for every missing blob as API.md says
    started = start(server.url, CONTENTS)
    assert len(started["bundles"]) == 1
    assert sorted(m["sha256"] for m in started["missing"] if m["url"]) == sorted(SHAS)
    # When a client PUTs each blob to its own URL, ignoring the bundle, and commits
    for missing in started["missing"]:
        put = requests.put(missing["url"], data=BY_SHA[missing["sha256"]], headers=missing["headers"], timeout=30)
        assert put.status_code == 200
    committed = commit(server.url, started["upload_id"])
    # Then the version is made
    assert committed.status_code == 201, committed.text


def test_a_bundle_put_stores_its_blobs_and_refuses_a_wrong_one_by_name(server: RunningServer) -> None:
    # Given an upload's bundle, and its body with one blob's bytes replaced by others of the same length
    started = start(server.url, CONTENTS)
    [bundle] = started["bundles"]
    bad = bundle["blobs"][2]
    body = b"".join(b"?" * len(BY_SHA[sha]) if sha == bad else BY_SHA[sha] for sha in bundle["blobs"])
    # When it is PUT
    answer = requests.put(bundle["url"], data=body, headers=bundle["headers"], timeout=30)
    # Then it is a 400 in API.md's error shape naming that blob; the commit lacks it alone
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_digest"
    assert answer.json()["error"]["details"]["blobs"] == [bad]
    assert missing_at_commit(server.url, started["upload_id"]) == {bad}


@pytest.mark.parametrize("cut", [-1, 1])
def test_a_bundle_body_of_another_length_is_refused_and_stores_nothing(server: RunningServer, cut: int) -> None:
    # Given an upload's bundle, and its body one byte short or one byte over
    started = start(server.url, CONTENTS)
    [bundle] = started["bundles"]
    body = b"".join(BY_SHA[sha] for sha in bundle["blobs"])
    body = body[:cut] if cut < 0 else body + b"!"
    # When it is PUT
    answer = requests.put(bundle["url"], data=body, timeout=30)
    # Then it is refused for its length, and no blob is stored
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_length")
    assert missing_at_commit(server.url, started["upload_id"]) == set(SHAS)


def test_a_tampered_bundle_url_or_a_foreign_host_or_origin_is_forbidden(server: RunningServer) -> None:
    # Given an upload's bundle and its body
    started = start(server.url, CONTENTS)
    [bundle] = started["bundles"]
    body = b"".join(BY_SHA[sha] for sha in bundle["blobs"])
    # When it is PUT with its size changed, from another Host, or with a web page's Origin
    tampered = requests.put(bundle["url"].replace("size=", "size=1"), data=body, timeout=30)
    foreign = requests.put(bundle["url"], data=body, headers={"Host": "evil.example"}, timeout=30)
    page = requests.put(bundle["url"], data=body, headers={"Origin": "https://evil.example"}, timeout=30)
    # Then each is 403, and nothing is stored
    assert [r.status_code for r in (tampered, foreign, page)] == [403, 403, 403]
    assert missing_at_commit(server.url, started["upload_id"]) == set(SHAS)


def test_the_sdk_logs_and_downloads_small_files_in_a_few_bundles(server: RunningServer, tmp_path: Path) -> None:
    # Given a folder of 600 small files
    root = tmp_path / "dataset"  # (the server keeps its own in tmp_path / "data")
    for i in range(600):
        (root / f"d{i % 6}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 6}" / f"{i:04d}.txt").write_bytes(f"sample {i}\n".encode() * (i % 7 + 1))
    reg, pool = counted_registry(server.url, tmp_path / "cache")

    # When the SDK logs it
    logged = reg.log_artifact(Artifact(N, type="dataset").add(root))

    # Then every file is in the version, sent in 3 bundle PUTs rather than 600
    assert logged.file_count == 600
    assert [(s.method, "/bundles/" in s.path) for s in pool.blob_calls] == [("PUT", True)] * 3

    # When another client downloads it into an empty folder with an empty cache
    reader, downloads = counted_registry(server.url, tmp_path / "empty-cache")
    result = reader.download(N, "latest", tmp_path / "out")

    # Then every file is written byte for byte, fetched in 3 bundle GETs
    assert result.downloaded == 600
    written = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*.txt")}
    assert written == {p.relative_to(root): p.read_bytes() for p in root.rglob("*.txt")}
    assert [(s.method, "/bundles/" in s.path) for s in downloads.blob_calls] == [("GET", True)] * 3


def test_a_bundle_of_several_mib_streams_both_ways(server: RunningServer, tmp_path: Path) -> None:
    # Given 12 files of 300 kB (a bundle of 3.6 MB, streamed rather than read whole)
    root = tmp_path / "dataset"
    root.mkdir()
    for i in range(12):
        (root / f"{i:02d}.bin").write_bytes(bytes([i]) * 300_000)
    reg, pool = counted_registry(server.url, tmp_path / "cache")

    # When the SDK logs them, and another client downloads them
    reg.log_artifact(Artifact(N, type="dataset").add(root))
    reader, downloads = counted_registry(server.url, tmp_path / "empty-cache")
    result = reader.download(N, "latest", tmp_path / "out")

    # Then one bundle carried them each way, and every file is back byte for byte
    assert [s.method for s in pool.blob_calls] == ["PUT"]
    assert [s.method for s in downloads.blob_calls] == ["GET"]
    assert result.downloaded == 12
    assert all((tmp_path / "out" / p.name).read_bytes() == p.read_bytes() for p in root.iterdir())
