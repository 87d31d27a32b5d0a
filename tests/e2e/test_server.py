"""`artreg server` as an HTTP server: framing and limits (uvicorn's job, answered in API.md's error
body), API.md's Host and Origin rule, the web UI's files, no request waiting behind another's slow
work, and a killed client's multipart upload resumed without sending its finished parts again."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.files import sha256_of, write_random
from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[2]
MiB = 1024**2
LIMIT = 6 * MiB  # the API's body limit


@pytest.fixture
def started(tmp_path: Path) -> Iterator[RunningServer]:
    """A server not started yet: the test sets its options and environment first."""
    running = RunningServer(tmp_path / "data")
    yield running
    running.stop()


def _host(server: RunningServer) -> str:
    return f"127.0.0.1:{server.port}"


def _connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], Any] | None:
    """The next answer on the connection (status, headers, JSON body), or None if it was closed."""
    answer = http.client.HTTPResponse(sock)
    try:
        answer.begin()
        body = answer.read()
    except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead):
        return None
    headers = {k.lower(): v for k, v in answer.getheaders()}
    return answer.status, headers, json.loads(body) if body else None


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionError, TimeoutError):
        return True


# ---------------------------------------------------------------- framing and limits


@pytest.mark.parametrize(
    "length_headers",
    [
        pytest.param("Content-Length: -1\r\n", id="negative"),
        pytest.param("Content-Length: twelve\r\n", id="non-numeric"),
        pytest.param("Content-Length: 2\r\nContent-Length: 40\r\n", id="two-different"),
        pytest.param("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", id="length-and-chunked"),
    ],
)
def test_a_malformed_length_is_refused_in_the_error_body_and_the_connection_closed(
    server: RunningServer, length_headers: str
) -> None:
    # Given a request whose body length cannot be told, with 8 MiB behind its headers
    sock = _connect(server)
    head = (
        f"POST /v1/projects/p/artifacts/a/uploads HTTP/1.1\r\nHost: {_host(server)}\r\n"
        f"Content-Type: application/json\r\n{length_headers}\r\n"
    )
    sock.sendall(head.encode())
    with contextlib.suppress(OSError):  # refused before it was read: as good
        sock.sendall(b"{}" + b" " * (8 * MiB))
    # When the answer is read
    answer = _response(sock)
    # Then it is a 400 in API.md's error body (or a clean close), and the connection ends there
    if answer is not None:
        status, headers, body = answer
        assert status == 400
        assert headers["content-type"] == "application/json"
        assert body["error"]["code"] == "invalid_request"
        assert set(body["error"]) == {"code", "message", "details"}
    assert _closed(sock)


def test_a_request_head_that_never_ends_is_refused(server: RunningServer) -> None:
    # Given a request whose one header goes on for 8 MiB
    sock = _connect(server)
    sock.sendall(f"GET /v1/projects/p/artifacts HTTP/1.1\r\nHost: {_host(server)}\r\nX-Long: ".encode())
    sent = 0
    with contextlib.suppress(OSError):
        while sent < 8 * MiB and not select.select([sock], [], [], 0)[0]:
            sock.sendall(b"a" * 65536)
            sent += 65536
    # When the answer is read
    answer = _response(sock)
    # Then it is a 400 in API.md's error body (or a clean close) long before the header's end
    if answer is not None:
        assert answer[0] == 400
        assert answer[2]["error"]["code"] == "invalid_request"
    assert sent < 4 * MiB
    assert _closed(sock)


def test_a_chunked_body_is_read_as_the_body_and_the_connection_goes_on(server: RunningServer) -> None:
    # Given an API request whose (malformed JSON) body comes chunked, then a second request behind it
    sock = _connect(server)
    sock.sendall(
        f"POST /v1/projects/p/artifacts/a/uploads HTTP/1.1\r\nHost: {_host(server)}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\n{\r\n0\r\n\r\n".encode()
    )
    # When both are answered
    first = _response(sock)
    sock.sendall(f"GET /v1/projects/p/artifacts HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode())
    second = _response(sock)
    # Then the chunk was the first request's body (a 400 for its JSON), not read as a request
    assert first is not None
    assert first[0] == 400
    assert first[2]["error"]["code"] == "invalid_request"
    assert second is not None
    assert second[0] == 200
    assert second[2] == {"items": [], "next_cursor": None}


def test_a_declared_body_over_the_api_limit_is_refused_before_it_is_sent(server: RunningServer) -> None:
    # Given an API request that declares 200 MiB and sends none of it
    sock = _connect(server)
    sock.sendall(
        f"POST /v1/projects/p/artifacts/a/uploads HTTP/1.1\r\nHost: {_host(server)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {200 * MiB}\r\n\r\n".encode()
    )
    # When the answer is read
    answer = _response(sock)
    # Then it is 413 too_large at once, and the connection is closed rather than read to its end
    assert answer is not None
    assert answer[0] == 413
    assert answer[2]["error"]["code"] == "too_large"
    assert _closed(sock)


def test_a_chunked_body_over_the_api_limit_is_refused_without_reading_the_rest(server: RunningServer) -> None:
    # Given an API request whose chunked body would be 200 MiB
    sock = _connect(server)
    sock.sendall(
        f"POST /v1/projects/p/artifacts/a/uploads HTTP/1.1\r\nHost: {_host(server)}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    frame = f"{MiB:x}\r\n".encode() + b" " * MiB + b"\r\n"
    # When it is sent until the server answers or stops taking it
    sent = 0
    try:
        while sent < 200 * MiB and not select.select([sock], [], [], 0)[0]:
            sock.sendall(frame)
            sent += MiB
    except OSError:
        pass
    answer = _response(sock)
    # Then it got 413 too_large (or a clean close) long before 200 MiB: the server read no further
    # than the limit (what was sent beyond it sits in socket buffers)
    assert answer is None or (answer[0], answer[2]["error"]["code"]) == (413, "too_large")
    assert sent < 64 * MiB
    assert _closed(sock)


def test_errors_of_the_server_itself_have_the_api_error_body(server: RunningServer) -> None:
    # When an unknown path, a blob URL with a method it lacks, and a PUT without a signature are sent
    unknown = requests.get(f"{server.url}/nowhere", timeout=10)
    wrong_method = requests.delete(f"{server.url}/blobs/p/{'a' * 64}", timeout=10)
    unsigned = requests.put(f"{server.url}/blobs/p/{'a' * 64}", data=b"x", timeout=10)
    # Then each is API.md's error body with its status, the 405 with Allow
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["error"]["code"]) == (405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "GET, HEAD, PUT"
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (403, "signature_mismatch")


# ---------------------------------------------------------------- Host and Origin (API.md, Auth)


def _get(server: RunningServer, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{server.port}/v1/projects/p/artifacts", headers=headers, timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_only_requests_naming_the_server_as_host_are_answered(started: RunningServer) -> None:
    # Given a server that clients also reach as registry.example (behind a proxy on the same port)
    port = started.port = _free_port()
    started.args = ["--public-url", f"https://registry.example:{port}"]
    started.start()
    # When requests name it by its loopback names, its public host, or another name (DNS rebinding)
    statuses = {
        host: _get(started, {"Host": host}).status_code
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"registry.example:{port}")
    }
    foreign = _get(started, {"Host": f"attacker.example:{port}"})
    # Then its own names are answered, and the other is refused in API.md's error body
    assert set(statuses.values()) == {200}
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (403, "forbidden")


def test_requests_from_an_origin_not_trusted_are_refused(started: RunningServer) -> None:
    # Given a server told to trust one other origin
    started.args = ["--trust-origin", "https://ui.example"]
    started.start()
    # When requests come from its own origin, the trusted one, and any other web page
    own = _get(started, {"Origin": f"http://127.0.0.1:{started.port}"})
    trusted = _get(started, {"Origin": "https://ui.example"})
    other = _get(started, {"Origin": "https://evil.example"})
    null = _get(started, {"Origin": "null"})
    other_port = _get(started, {"Origin": f"http://127.0.0.1:{started.port + 1}"})
    write = requests.post(
        f"{started.url}/v1/projects/p/artifacts/a/uploads",
        json={"type": "model", "files": []},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    # Then its own and the trusted one are answered (the trusted one with CORS headers naming it)
    assert own.status_code == 200
    assert "access-control-allow-origin" not in own.headers
    assert trusted.status_code == 200
    assert trusted.headers["access-control-allow-origin"] == "https://ui.example"
    # And the others, reads and writes alike, are refused, writing nothing
    for refused in (other, null, other_port, write):
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forbidden")
    assert _get(started, {}).json()["items"] == []


# ---------------------------------------------------------------- the web UI


def test_the_web_ui_is_served_at_ui(started: RunningServer, tmp_path: Path) -> None:
    # Given a build of the web UI
    ui = tmp_path / "ui"
    (ui / "assets").mkdir(parents=True)
    (ui / "index.html").write_text("<!doctype html><title>artreg</title>")
    (ui / "assets" / "app.js").write_text("console.log('artreg')")
    (tmp_path / "secret.txt").write_text("not for the web")
    started.env["ARTREG_UI_DIR"] = str(ui)
    started.start()
    # When a browser opens the server, and the UI's files are asked for
    root = requests.get(f"{started.url}/", allow_redirects=False, timeout=10)
    index = requests.get(f"{started.url}/ui/", timeout=10)
    script = requests.get(f"{started.url}/ui/assets/app.js", timeout=10)
    head = requests.head(f"{started.url}/ui/assets/app.js", timeout=10)
    posted = requests.post(f"{started.url}/ui/", data=b"x", timeout=10)
    missing = requests.get(f"{started.url}/ui/nothing.js", timeout=10)
    # Then / sends it to /ui/, which serves the files with their content types
    assert (root.status_code, root.headers["location"]) == (302, "/ui/")  # as `artreg ui` sends it
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "<title>artreg</title>" in index.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert head.status_code == 200
    assert head.content == b""
    # And other methods, absent files and paths out of the folder get API.md's errors
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET, HEAD")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    for escape in ("/ui/../secret.txt", "/ui/%2e%2e/secret.txt", "/ui/..%2fsecret.txt"):
        conn = http.client.HTTPConnection("127.0.0.1", started.port, timeout=10)
        conn.request("GET", escape)
        answer = conn.getresponse()
        assert answer.status == 404, escape
        assert b"not for the web" not in answer.read()


# ---------------------------------------------------------------- no request waits behind another's work


def _start_upload(server: RunningServer, name: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    answer = requests.post(
        f"{server.url}/v1/projects/p/artifacts/{name}/uploads",
        json={"type": "dataset", "files": files},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.mark.slow
def test_a_resolve_during_a_large_multipart_completion_answers_at_once(started: RunningServer, tmp_path: Path) -> None:
    # Given a version to resolve, and a 200 MiB blob whose parts are all uploaded
    started.env["ARTREG_MULTIPART_THRESHOLD"] = str(5 * MiB)
    started.start()
    small = _start_upload(started, "small", [])
    commit = f"{started.url}/v1/projects/p/artifacts/small/uploads/{small['upload_id']}/commit"
    assert requests.post(commit, timeout=30).ok
    big = tmp_path / "big.bin"
    sha = write_random(big, 200 * MiB)
    upload = _start_upload(started, "big", [{"path": "big.bin", "size": 200 * MiB, "sha256": sha}])
    [missing] = upload["missing"]
    target = missing["multipart"]
    parts = []
    with big.open("rb") as source:
        for part in target["parts"]:
            source.seek((part["part_number"] - 1) * target["part_size"])
            put = requests.put(part["url"], data=source.read(target["part_size"]), timeout=120)
            assert put.ok, put.text
            parts.append({"part_number": part["part_number"], "etag": put.headers["etag"]})
    # When the blob is completed, and a resolve is made while the completion runs
    completion: dict[str, float] = {}

    def complete() -> None:
        started_at = time.perf_counter()
        answer = requests.post(
            f"{started.url}/v1/projects/p/artifacts/big/uploads/{upload['upload_id']}/blobs/{sha}/complete",
            json={"parts": parts},
            timeout=120,
        )
        completion.update(status=answer.status_code, start=started_at, end=time.perf_counter())

    worker = threading.Thread(target=complete)
    worker.start()
    time.sleep(0.05)  # the completion is under way (it reads 200 MiB)
    resolve_start = time.perf_counter()
    resolved = requests.get(f"{started.url}/v1/resolve/p/small@latest", timeout=60)
    resolve_end = time.perf_counter()
    worker.join(120)
    # Then the completion succeeded, and the resolve was answered before it, in a small part of its time
    assert completion["status"] == 204 or 200 <= completion["status"] < 300
    assert resolved.status_code == 200
    assert resolve_end < completion["end"]
    assert (resolve_end - resolve_start) * 4 < completion["end"] - completion["start"]


# ---------------------------------------------------------------- a killed client resumes


# A job that logs a file with the SDK, one part at a time and slowly, printing each part it finished.
SLOW_LOG = r"""
import sys, time
from artreg.client import Artifact, Registry
from artreg.client.http import Transport
from tests.e2e.counting import CountingPool

class Slow(CountingPool):
    def request(self, method, url, body=None, *args, **kwargs):
        answer = super().request(method, url, body, *args, **kwargs)
        if "/parts/" in url:
            print("part", flush=True)
            time.sleep(0.3)
        return answer

url, path, cache = sys.argv[1:4]
reg = Registry(url, project="p", progress=False, cache_dir=cache, workers=1,
               transport=Transport(url, pool=Slow()))
reg.log_artifact(Artifact("big", type="dataset").add(path, "big.bin"))
"""


@pytest.mark.slow
def test_a_client_killed_mid_log_resumes_without_resending_finished_parts(
    started: RunningServer, tmp_path: Path
) -> None:
    # Given a server that takes files over 5 MiB in parts of 5 MiB, and a 40 MiB file (8 parts); without
    # the handoff socket, as a client on another machine sees it (one on this machine hands the file off)
    started.env.update(ARTREG_MULTIPART_THRESHOLD=str(5 * MiB), ARTREG_PART_SIZE=str(5 * MiB), ARTREG_HANDOFF="0")
    started.start()
    path = tmp_path / "big.bin"
    sha = write_random(path, 40 * MiB)
    # And a client killed after it sent three parts
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_LOG, started.url, str(path), str(tmp_path / "cache1")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    for _ in range(3):
        assert child.stdout.readline() == "part\n"
    child.kill()
    child.wait(10)
    # When the same file is logged again
    from tests.e2e.counting import counted_registry

    reg, pool = counted_registry(started.url, tmp_path / "cache2", project="p")
    from artreg.client import Artifact

    logged = reg.log_artifact(Artifact("big", type="dataset").add(str(path), "big.bin"))
    # Then only the parts the server lacked were sent (five or so of the eight: a fourth may have
    # landed before the kill), and the version holds the whole file
    parts_sent = pool.summary()["part_puts"]
    assert 1 <= parts_sent <= 5
    assert pool.blob_bytes == parts_sent * 5 * MiB
    assert (logged.files[0].sha256, logged.size) == (sha, 40 * MiB)
    out = tmp_path / "out"
    reg.download("big", logged.version, out)
    assert sha256_of(out / "big.bin") == sha


def test_idle_kept_alive_connections_hold_no_threads(server: RunningServer) -> None:
    # Given 400 connections that each made one request and then stay open, idle
    assert server.process is not None
    idle = []
    for _ in range(400):
        sock = _connect(server)
        sock.sendall(f"GET /v1/projects/p/artifacts HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode())
        answer = _response(sock)
        assert answer is not None
        assert answer[0] == 200
        idle.append(sock)
    # When a new client asks something
    answered = requests.get(f"{server.url}/v1/projects/p/artifacts", timeout=10)
    # Then it is answered, and the server runs no thread for each idle connection
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    threads = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads:"))
    assert answered.status_code == 200
    assert threads < 100
    for sock in idle:
        sock.close()


# ---------------------------------------------------------------- large downloads


def test_a_client_gone_mid_download_leaves_the_server_serving_the_blob_whole(
    server: RunningServer, tmp_path: Path
) -> None:
    # Given a stored blob of 24 MiB (sent in pieces of 4 MiB, each read by a worker thread)
    from artreg.client import Artifact, Registry

    source = tmp_path / "weights.bin"
    expected = write_random(source, 24 * MiB)
    with Registry(server.url, project="p", progress=False) as reg:
        reg.log_artifact(Artifact("weights", type="model").add(str(source)))
    listing = requests.get(f"{server.url}/v1/projects/p/artifacts/weights/versions/1.0.0/download", timeout=30)
    url = listing.json()["files"][0]["url"]
    path = url.split(str(server.port), 1)[1]

    # When clients read a few bytes of it and hang up, three times
    for _ in range(3):
        sock = _connect(server)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {_host(server)}\r\n\r\n".encode())
        assert sock.recv(65536)
        sock.close()

    # Then the next download gets every byte, and the API still answers
    answer = requests.get(url, timeout=60)
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == expected
    assert requests.get(f"{server.url}/v1/projects/p/artifacts/weights", timeout=10).status_code == 200


def test_the_idempotency_records_are_opened_once_the_server_serves_not_by_the_first_post(
    server: RunningServer,
) -> None:
    # Given a server just started, asked nothing
    records = server.data / "idempotency.db"
    # Then it opens its Idempotency-Key records by itself (Powertools' utility and the boto3 it imports
    # load beside it, ~0.25 s that the first POST, often a large file's log, waited for)
    deadline = time.monotonic() + 20
    while not records.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert records.exists()
