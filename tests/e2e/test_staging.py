"""Staged blobs over HTTP: `artreg server` offers URLs that take a large file's bytes before the
client knows their SHA-256, and stores them under the SHA-256 it computes itself; the SDK sends large
new files so, hashing them as they go, and falls back to API.md's path wherever none is offered."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from artreg.client import Artifact, handoff, staging
from artreg.client.errors import NotFound
from artreg.client.http import Transport
from tests.e2e.counting import counted_registry
from tests.support.files import sha256_of, write_random
from tests.support.server import RunningServer

P = "vision"
MiB = 1024**2
DATA = os.urandom(2 * MiB + 5)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[RunningServer]:
    """A server not started yet: the test sets its environment first."""
    running = RunningServer(tmp_path / "data")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def small_files_staged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK stages files from 1 MiB (32 MiB by default): test files stay small; and it PUTs them, as a
    client on another machine does (test_handoff: one on the server's hands them off)."""
    monkeypatch.setattr(staging, "STAGE_MIN", MiB)
    monkeypatch.setattr(handoff, "SUPPORTED", False)


def offer(server: RunningServer, *sizes: int, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        f"{server.url}/v1/projects/{P}/staging", json={"sizes": list(sizes)}, headers=headers, timeout=30
    )


def staging_url(server: RunningServer, size: int = len(DATA)) -> str:
    answer = offer(server, size)
    assert answer.status_code == 200, answer.text
    [target] = answer.json()["staging"]
    assert target["size"] == size
    url: str = target["url"]
    return url


def blob_files(server: RunningServer) -> list[Path]:
    """The project's files in the blob store, temporary ones included."""
    return sorted(p for p in (server.data / "blobs" / P).rglob("*") if p.is_file())


def start(server: RunningServer, sha256: str, size: int) -> dict[str, Any]:
    entry = {"path": "model.bin", "size": size, "sha256": sha256}
    answer = requests.post(f"{server.url}/v1/projects/{P}/artifacts/m/uploads", json={"files": [entry]}, timeout=30)
    assert answer.status_code == 201, answer.text
    started: dict[str, Any] = answer.json()
    return started


def test_the_sdk_sends_a_large_new_file_once_and_logs_it(server: RunningServer, tmp_path: Path) -> None:
    # Given a new file of 3 MiB
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    # When it is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then its bytes went once, to a staging URL, and the upload found them stored: it committed at once
    assert [(s.method, s.path.split("/")[3]) for s in pool.blob_calls] == [("PUT", "staging")]
    assert pool.blob_bytes == 3 * MiB
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["staging", "uploads"]
    # And the version holds the file, which downloads whole
    assert (logged.files[0].sha256, logged.size) == (sha, 3 * MiB)
    reg.download("m", logged.version, tmp_path / "out")
    assert sha256_of(tmp_path / "out" / "model.bin") == sha


def test_a_file_the_hash_cache_knows_goes_the_usual_way_and_sends_nothing_stored(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given a large file logged once, long enough ago for the hash cache to keep its SHA-256
    path = tmp_path / "model.bin"
    write_random(path, 3 * MiB, MiB)
    old = time.time() - 60
    os.utime(path, (old, old))
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    reg.log_artifact(Artifact("m", type="model").add(str(path)))
    pool.reset()
    # When it is logged again
    reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then no staging URL is asked for, and no byte is sent: the store holds it
    assert pool.blob_calls == []
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["uploads"]


def test_a_file_sent_just_after_it_was_written_is_not_sent_again(server: RunningServer, tmp_path: Path) -> None:
    # Given a large file logged right after it was written (too recent for the hash cache to keep its
    # SHA-256: it might change again within the same mtime)
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    reg.log_artifact(Artifact("m", type="model").add(str(path)))
    pool.reset()
    # When it is logged again, unchanged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it is hashed first, as when staging did not exist, and none of its bytes is sent
    assert pool.blob_calls == []
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["uploads"]
    assert logged.files[0].sha256 == sha


def test_the_sdk_logs_the_usual_way_where_no_url_is_offered(started: RunningServer, tmp_path: Path) -> None:
    # Given a server that takes files over 5 MiB in parts of 5 MiB (it offers staging up to 5 MiB only)
    started.env.update(ARTREG_MULTIPART_THRESHOLD=str(5 * MiB), ARTREG_PART_SIZE=str(5 * MiB))
    started.start()
    path = tmp_path / "model.bin"
    sha = write_random(path, 10 * MiB, MiB)
    reg, pool = counted_registry(started.url, tmp_path / "cache")
    # When a 10 MiB file is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it went in parts (which a killed client's next log resumes), nothing to a staging URL
    assert pool.summary()["part_puts"] == 2
    assert all("/staging/" not in s.path for s in pool.blob_calls)
    assert logged.files[0].sha256 == sha


def test_the_sdk_logs_the_usual_way_against_a_server_without_staging(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server that has no staging route (an older one: its answer is a 404)
    real = Transport.api

    def older(self: Transport, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("/staging"):
            raise NotFound("no such route")
        return real(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Transport, "api", older)
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    # When a large file is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it is PUT to its blob URL as API.md says
    assert [s.path.split("/")[3] for s in pool.blob_calls] == [sha]
    assert logged.files[0].sha256 == sha


def test_a_client_that_ignores_the_offer_logs_as_api_md_says(server: RunningServer) -> None:
    # Given a staging URL asked for and never used
    staging_url(server)
    # When a client logs as API.md says: start, PUT to the blob's URL, commit
    started = start(server, SHA, len(DATA))
    [missing] = started["missing"]
    assert requests.put(missing["url"], data=DATA, headers=missing["headers"], timeout=30).status_code == 200
    commit = f"{server.url}/v1/projects/{P}/artifacts/m/uploads/{started['upload_id']}/commit"
    # Then the version is made
    assert requests.post(commit, timeout=30).status_code == 201


def test_staged_bytes_count_only_as_the_content_they_are(server: RunningServer) -> None:
    # Given bytes staged, and a client that then claims they were other content of the same size
    etag = requests.put(staging_url(server), data=DATA, timeout=30).headers["etag"]
    claimed = hashlib.sha256(b"x" + DATA[1:]).hexdigest()
    # When it starts an upload listing the claimed content
    started = start(server, claimed, len(DATA))
    # Then the server answered the SHA-256 of what it received, and asks for the claimed content's bytes
    assert etag == f'"{SHA}"'
    assert [m["sha256"] for m in started["missing"]] == [claimed]
    assert [p.name for p in blob_files(server)] == [SHA]


def test_a_body_broken_off_installs_nothing(server: RunningServer) -> None:
    # Given a staging URL, and a client that sends half its body and goes
    split = urlsplit(staging_url(server))
    with socket.create_connection((split.hostname, split.port)) as conn:
        head = f"PUT {split.path}?{split.query} HTTP/1.1\r\nHost: {split.netloc}\r\nContent-Length: {len(DATA)}\r\n\r\n"
        conn.sendall(head.encode() + DATA[: len(DATA) // 2])
    # Then the server began to receive it (its staging folder was made for it), and nothing is stored:
    # no blob, and no temporary file once it has seen the client go
    deadline = time.monotonic() + 10
    while (blob_files(server) or not (server.data / "blobs" / P / "staging").is_dir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (server.data / "blobs" / P / "staging").is_dir()
    assert blob_files(server) == []


def test_a_body_declared_longer_than_signed_is_refused_before_it_is_sent(server: RunningServer) -> None:
    answer = requests.put(staging_url(server), data=DATA + b"!", timeout=30)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_length")
    assert blob_files(server) == []


def test_a_tampered_staging_url_is_refused(server: RunningServer) -> None:
    # When the signed size is raised to fit a longer body
    url = staging_url(server).replace(f"size={len(DATA)}", f"size={len(DATA) + 1}")
    answer = requests.put(url, data=DATA + b"!", timeout=30)
    # Then it is a 403 in API.md's error body, and nothing is stored
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "signature_mismatch")
    assert blob_files(server) == []


def test_a_foreign_host_or_origin_gets_no_url_and_stores_nothing(server: RunningServer) -> None:
    # When a web page of another origin, or a request naming another host (DNS rebinding), asks for a
    # staging URL or sends to one
    port = server.port
    asked = [
        offer(server, len(DATA), headers={"Origin": "https://evil.example"}),
        offer(server, len(DATA), headers={"Host": f"attacker.example:{port}"}),
    ]
    url = staging_url(server)
    sent = [
        requests.put(url, data=DATA, headers={"Origin": "https://evil.example"}, timeout=30),
        requests.put(url, data=DATA, headers={"Host": f"attacker.example:{port}"}, timeout=30),
    ]
    # Then each is refused, and nothing is stored
    for refused in asked + sent:
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert blob_files(server) == []


def test_content_already_stored_is_answered_and_kept_as_it_was(server: RunningServer) -> None:
    # Given the content stored once through a staging URL
    assert requests.put(staging_url(server), data=DATA, timeout=30).status_code == 200
    [blob] = blob_files(server)
    inode = blob.stat().st_ino
    # When it is staged again
    again = requests.put(staging_url(server), data=DATA, timeout=30)
    # Then the answer names it, and the copy stored is the one that was there, alone
    assert (again.status_code, again.headers["etag"]) == (200, f'"{SHA}"')
    assert blob_files(server) == [blob]
    assert blob.stat().st_ino == inode


def test_a_request_for_too_many_urls_is_refused(server: RunningServer) -> None:
    answer = offer(server, *([MiB] * 17))
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_request")


def test_a_log_that_expects_its_files_unchanged_hashes_first_and_sends_nothing_stored(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given a large file logged from another machine's cache (this client's hash cache knows nothing)
    path = tmp_path / "model.bin"
    write_random(path, 3 * MiB, MiB)
    first, _ = counted_registry(server.url, tmp_path / "cache1")
    logged = first.log_artifact(Artifact("m", type="model").add(str(path)))
    reg, pool = counted_registry(server.url, tmp_path / "cache2")
    # When it is logged with if_changed
    again = reg.log_artifact(Artifact("m", type="model").add(str(path)), if_changed=True)
    # Then it is hashed first and the version there is answered: no staging, no byte sent
    assert again.version == logged.version
    assert pool.blob_calls == []
    assert all(not s.path.endswith("/staging") for s in pool.api_calls)
