"""The handoff over a real `artreg server`: the SDK on the server's machine hands a large new file's
descriptor to the server's Unix socket, named by the staging answer, instead of sending its bytes
over HTTP; and falls back to the staged PUT wherever that fails (artreg.client.handoff,
artreg.local.handoff)."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from artreg.client import Artifact, Registry, staging
from artreg.client import handoff as client_handoff
from artreg.local import handoff
from artreg.model.handoff import HEAD, frame
from tests.e2e.counting import counted_registry
from tests.support.files import sha256_of, write_random
from tests.support.server import RunningServer

pytestmark = pytest.mark.skipif(not handoff.SUPPORTED, reason="the handoff needs Linux's SO_PEERCRED and SCM_RIGHTS")

P = "vision"
MiB = 1024**2


@pytest.fixture(autouse=True)
def small_files_staged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK stages files from 1 MiB (32 MiB by default): test files stay small."""
    monkeypatch.setattr(staging, "STAGE_MIN", MiB)


@pytest.fixture
def handoffs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files the SDK handed off (and the server took)."""
    taken: list[str] = []
    real = client_handoff.hand_off

    def counted(socket_path: str, url: str, stat: Any) -> str:
        sha256 = real(socket_path, url, stat)
        taken.append(stat.path)
        return sha256

    monkeypatch.setattr(client_handoff, "hand_off", counted)
    return taken


@pytest.fixture
def started(tmp_path: Path) -> Iterator[RunningServer]:
    """A server not started yet: the test sets its environment first."""
    running = RunningServer(tmp_path / "data")
    yield running
    running.stop()


def staging_answer(server: RunningServer) -> requests.Response:
    answer = requests.post(f"{server.url}/v1/projects/{P}/staging", json={"sizes": [2 * MiB]}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer


def test_the_sdk_hands_a_large_new_file_off_and_sends_none_of_its_bytes_over_http(
    server: RunningServer, tmp_path: Path, handoffs: list[str]
) -> None:
    # Given a new file of 3 MiB on the server's machine
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    # When it is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it was handed off: no blob request, no blob byte over HTTP, and the upload found it stored
    assert handoffs == [str(path)]
    assert (pool.blob_calls, pool.blob_bytes) == ([], 0)
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["staging", "uploads"]
    # And the version holds the file, which downloads whole
    assert (logged.files[0].sha256, logged.size) == (sha, 3 * MiB)
    reg.download("m", logged.version, tmp_path / "out")
    assert sha256_of(tmp_path / "out" / "model.bin") == sha


def test_the_staging_answer_names_the_servers_own_socket(server: RunningServer) -> None:
    named = staging_answer(server).headers["artreg-handoff"]
    # Then it is a socket in the server's data folder, its user's alone
    assert Path(named).parent == server.data / "handoff"
    assert os.stat(named).st_mode & 0o777 == 0o600


def test_without_a_socket_the_sdk_puts_the_file_to_its_staging_url(
    started: RunningServer, tmp_path: Path, handoffs: list[str]
) -> None:
    # Given a server started with the handoff off
    started.env["ARTREG_HANDOFF"] = "0"
    started.start()
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(started.url, tmp_path / "cache")
    # When a large file is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then the staging answer named no socket, and the file went in one PUT to its staging URL
    assert "artreg-handoff" not in staging_answer(started).headers
    assert handoffs == []
    assert [(s.method, s.path.split("/")[3]) for s in pool.blob_calls] == [("PUT", "staging")]
    assert logged.files[0].sha256 == sha


def test_the_sdk_falls_back_to_the_staged_put_where_the_socket_cannot_be_reached(
    server: RunningServer, tmp_path: Path, handoffs: list[str]
) -> None:
    # Given a socket named that the client cannot reach (another machine's, a container's: here, gone)
    for sock in (server.data / "handoff").glob("*.sock"):
        sock.unlink()
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    # When a large file is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it went over HTTP, to its staging URL, and the version holds it
    assert handoffs == []
    assert [(s.method, s.path.split("/")[3]) for s in pool.blob_calls] == [("PUT", "staging")]
    assert logged.files[0].sha256 == sha


# ---------------------------------------------------------------- over the multipart threshold


@pytest.fixture
def small_threshold(started: RunningServer) -> RunningServer:
    """A server that takes files over 5 MiB in parts of 5 MiB over HTTP (512 MiB by default); not started."""
    started.env.update(ARTREG_MULTIPART_THRESHOLD=str(5 * MiB), ARTREG_PART_SIZE=str(5 * MiB))
    return started


def stored_blob(server: RunningServer, sha256: str) -> Path:
    return server.data / "blobs" / P / "blobs" / "sha256" / sha256[:2] / sha256


def test_a_file_over_the_multipart_threshold_is_handed_off_with_no_blob_byte_over_http(
    small_threshold: RunningServer, tmp_path: Path, handoffs: list[str]
) -> None:
    # Given a server that sends files over 5 MiB in parts over HTTP, and a new file of 12 MiB on its machine
    small_threshold.start()
    path = tmp_path / "model.bin"
    sha = write_random(path, 12 * MiB, MiB)
    reg, pool = counted_registry(small_threshold.url, tmp_path / "cache")
    # When it is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it was handed off: no blob request, no blob byte over HTTP, no part, no completion
    assert handoffs == [str(path)]
    assert (pool.blob_calls, pool.blob_bytes) == ([], 0)
    assert [s.path.rsplit("/", 1)[-1] for s in pool.api_calls] == ["staging", "uploads"]
    # And the server stored it under its SHA-256, which the version lists
    assert (logged.files[0].sha256, logged.size) == (sha, 12 * MiB)
    assert sha256_of(stored_blob(small_threshold, sha)) == sha
    reg.download("m", logged.version, tmp_path / "out")
    assert sha256_of(tmp_path / "out" / "model.bin") == sha


def test_an_http_put_to_a_staging_url_over_the_threshold_is_refused_and_writes_nothing(
    small_threshold: RunningServer,
) -> None:
    # Given a URL for a file over the threshold, offered to a client on this machine that asked for one
    small_threshold.start()
    answer = requests.post(
        f"{small_threshold.url}/v1/projects/{P}/staging",
        json={"sizes": [6 * MiB]},
        headers={"Artreg-Handoff": "large"},
        timeout=30,
    )
    [target] = answer.json()["staging"]
    assert target["url"] is not None
    assert target["handoff_only"]
    # When its bytes are PUT to it over HTTP
    put = requests.put(target["url"], data=os.urandom(6 * MiB), timeout=60)
    # Then it is refused, saying why, and nothing is written
    assert put.status_code == 403
    assert put.json()["error"]["code"] == "handoff_only"
    assert not [p for p in (small_threshold.data / "blobs" / P).rglob("*") if p.is_file()]
    # And a client that did not ask (one that cannot hand off) is offered no URL for that size
    plain = requests.post(f"{small_threshold.url}/v1/projects/{P}/staging", json={"sizes": [6 * MiB]}, timeout=30)
    assert plain.json()["staging"][0]["url"] is None


@pytest.mark.parametrize("without", ["the server's socket off", "a socket the client cannot reach"])
def test_a_client_without_the_socket_logs_a_file_over_the_threshold_in_parts(
    small_threshold: RunningServer, tmp_path: Path, handoffs: list[str], without: str
) -> None:
    # Given a server with no handoff socket, or one the client cannot reach (another machine's, a container's)
    if without == "the server's socket off":
        small_threshold.env["ARTREG_HANDOFF"] = "0"
    small_threshold.start()
    for sock in (small_threshold.data / "handoff").glob("*.sock"):
        sock.unlink()
    path = tmp_path / "model.bin"
    sha = write_random(path, 12 * MiB, MiB)
    reg, pool = counted_registry(small_threshold.url, tmp_path / "cache")
    # When a file over the threshold is logged
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    # Then it went in its parts (which a killed client's next log resumes), never to a staging URL
    assert handoffs == []
    assert pool.summary()["part_puts"] == 3
    assert all("/staging/" not in s.path for s in pool.blob_calls)
    assert pool.blob_bytes == 12 * MiB
    assert logged.files[0].sha256 == sha


# A job that logs a file with the SDK, which stages files from 1 MiB here, as a user's job does.
LOG_JOB = r"""
import sys
from artreg.client import Artifact, Registry, staging
staging.STAGE_MIN = 1024**2
url, path, cache = sys.argv[1:4]
Registry(url, project="vision", progress=False, cache_dir=cache).log_artifact(Artifact("m", type="model").add(path))
"""


def test_a_client_killed_mid_handoff_of_a_large_file_leaves_nothing_and_its_rerun_logs_it(
    in_process: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handoffs: list[str]
) -> None:
    # Given a job handing a 12 MiB file off (over the 5 MiB threshold), the server's copy held
    copying, release, ended = threading.Event(), threading.Event(), threading.Event()
    real_copy, real_receive = handoff.copy_hashed, in_process.local.blobs.receive_staged

    def held(*args: Any) -> None:
        copying.set()
        assert release.wait(60)
        real_copy(*args)

    def receive_staged(*args: Any) -> str:
        try:
            return str(real_receive(*args))
        finally:
            ended.set()

    monkeypatch.setattr(handoff, "copy_hashed", held)
    monkeypatch.setattr(in_process.local.blobs, "receive_staged", receive_staged)
    path = tmp_path / "model.bin"
    sha = write_random(path, 12 * MiB, MiB)
    repo = Path(__file__).resolve().parents[2]
    job = subprocess.Popen(
        [sys.executable, "-c", LOG_JOB, in_process.url, str(path), str(tmp_path / "cache1")],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    try:
        assert copying.wait(60)
        # When the job is killed during the copy, which then ends
        job.kill()
        job.wait(30)
    finally:
        release.set()
    assert ended.wait(60)
    # Then nothing is installed: no blob, no temporary file, no version
    blobs = in_process.local.blobs.root
    assert not [p for p in blobs.rglob("*") if p.is_file() and p.name != ".secret"]
    versions = requests.get(f"{in_process.url}/v1/projects/{P}/artifacts/m/versions", timeout=30)
    assert versions.status_code == 404, versions.text  # no such artifact: no upload was even started
    # And when it is logged again, it is handed off anew and logged as the first version, whole
    monkeypatch.setattr(handoff, "copy_hashed", real_copy)
    reg = Registry(in_process.url, project=P, progress=False, cache_dir=tmp_path / "cache2")
    logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    assert handoffs == [str(path)]
    assert (logged.version, logged.files[0].sha256, logged.size) == ("1.0.0", sha, 12 * MiB)
    reg.download("m", logged.version, tmp_path / "out")
    assert sha256_of(tmp_path / "out" / "model.bin") == sha


class _Refusing(socketserver.BaseRequestHandler):
    request: socket.socket

    def handle(self) -> None:
        data = b""
        while len(data) < HEAD.size or len(data) < HEAD.size + HEAD.unpack_from(data)[0]:
            piece, fds, _flags, _ = socket.recv_fds(self.request, 8192, 1)
            for fd in fds:
                os.close(fd)
            if not piece:
                return
            data += piece
        self.request.sendall(frame({"error": {"code": "forbidden", "message": "not from you"}}))


def test_the_sdk_falls_back_to_the_staged_put_where_the_server_refuses(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a socket that refuses every handoff (as a server refuses another user's)
    refusing = socketserver.ThreadingUnixStreamServer(str(tmp_path / "refusing.sock"), _Refusing)
    threading.Thread(target=refusing.serve_forever, args=(0.05,), daemon=True).start()
    real = client_handoff.hand_off
    refused: list[str] = []

    def to_the_refusing_socket(socket_path: str, url: str, stat: Any) -> str:
        try:
            return real(str(tmp_path / "refusing.sock"), url, stat)
        except client_handoff.Refused as error:
            refused.append(str(error))
            raise

    monkeypatch.setattr(client_handoff, "hand_off", to_the_refusing_socket)
    path = tmp_path / "model.bin"
    sha = write_random(path, 3 * MiB, MiB)
    reg, pool = counted_registry(server.url, tmp_path / "cache")
    try:
        # When a large file is logged
        logged = reg.log_artifact(Artifact("m", type="model").add(str(path)))
    finally:
        refusing.shutdown()
        refusing.server_close()
    # Then the refusal was heard, and the file went to its staging URL over HTTP
    assert refused == ["forbidden: not from you"]
    assert [(s.method, s.path.split("/")[3]) for s in pool.blob_calls] == [("PUT", "staging")]
    assert logged.files[0].sha256 == sha


@dataclass
class InProcess:
    url: str
    local: Any  # artreg.local.server.Local


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    """`artreg server` as `serve` builds it, in this process (so that a test may hold a handoff's copy):
    uvicorn on a thread, the handoff socket beside it, files over 5 MiB in parts of 5 MiB."""
    import uvicorn

    from artreg.local.asgi import App
    from artreg.local.guard import Guard
    from artreg.local.handoff import HandoffServer
    from artreg.local.server import Local, bind
    from artreg.settings import ServerSettings

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = ServerSettings.from_environment(multipart_threshold=5 * MiB, part_size=5 * MiB)
    local = Local(tmp_path / "data", url, settings=config)
    handoff_server = HandoffServer.start(local.blobs, tmp_path / "data" / "handoff")
    assert handoff_server is not None
    app = App(local, Guard.for_server("127.0.0.1", port), handoff=handoff_server.path)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    yield InProcess(url, local)
    server.should_exit = True
    thread.join(30)
    handoff_server.stop()
    app.pools.shutdown()
    sock.close()


def test_the_server_answers_resolves_while_a_handoff_copies(
    in_process: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a version to resolve, and a handoff whose copy is held until the test lets it go
    reg = Registry(in_process.url, project=P, progress=False, cache_dir=tmp_path / "cache")
    small = tmp_path / "small.txt"
    small.write_text("hello")
    reg.log_artifact(Artifact("small", type="dataset").add(str(small)))
    copying, release = threading.Event(), threading.Event()
    real = handoff.copy_hashed

    def held(*args: Any) -> None:
        copying.set()
        assert release.wait(60)
        real(*args)

    monkeypatch.setattr(handoff, "copy_hashed", held)
    big = tmp_path / "model.bin"
    sha = write_random(big, 3 * MiB, MiB)
    logged: list[Any] = []
    log = threading.Thread(target=lambda: logged.append(reg.log_artifact(Artifact("m", type="model").add(str(big)))))
    log.start()
    try:
        assert copying.wait(60)
        # When a resolve is made while the copy is under way
        resolved = requests.get(f"{in_process.url}/v1/resolve/{P}/small@latest", timeout=60)
        # Then it is answered before the copy is let go (the handoff holds no thread the server answers on)
        assert resolved.status_code == 200
        assert log.is_alive()
        assert not logged
    finally:
        release.set()
        log.join(60)
    # And the handoff then completes the log
    assert logged[0].files[0].sha256 == sha
