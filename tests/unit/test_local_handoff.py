"""The handoff socket of the folder blob store: a client on the server's machine hands it an open
descriptor of a file for a staging URL; the server copies it in the kernel, hashes its own copy and
stores it as a staged PUT's body (artreg.local.handoff, artreg.client.handoff)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from artreg.client import handoff as client_handoff
from artreg.client.hashcache import Stat
from artreg.local import handoff
from artreg.local.blobs import FolderBlobStore
from artreg.local.handoff import HandoffServer
from artreg.model.handoff import HEAD, MAX_REPLY, frame, read_message
from tests.unit.test_local_blobs import FakeClock

pytestmark = pytest.mark.skipif(not handoff.SUPPORTED, reason="the handoff needs Linux's SO_PEERCRED and SCM_RIGHTS")

P = "vision"
KiB = 1024
STEP = 64 * KiB  # the copy's step in these tests: a file of a few steps
DATA = os.urandom(4 * STEP + 123)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def small_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handoff, "STEP", STEP)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> FolderBlobStore:
    return FolderBlobStore(tmp_path / "data", base_url="http://127.0.0.1:0", clock=clock)


@pytest.fixture
def server(store: FolderBlobStore, tmp_path: Path) -> Iterator[HandoffServer]:
    started = HandoffServer.start(store, tmp_path / "handoff")
    assert started is not None
    yield started
    started.stop()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(DATA)
    return path


def url_for(store: FolderBlobStore, size: int = len(DATA)) -> str:
    [target] = store.staging_targets(P, [size])
    assert target.url is not None
    return target.url


def stored(store: FolderBlobStore) -> list[Path]:
    """Every file the store holds besides its key: blobs, and any temporary file left."""
    return sorted(p for p in store.root.rglob("*") if p.is_file() and p.name != ".secret")


def blob_path(store: FolderBlobStore, sha256: str) -> Path:
    return store.root / P / "blobs" / "sha256" / sha256[:2] / sha256


def hand(server: HandoffServer, message: dict[str, Any] | bytes, fds: list[int]) -> dict[str, Any]:
    """Sends one message with `fds` as a client would; answers the server's reply."""
    data = message if isinstance(message, bytes) else frame(message)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(server.path)
        with contextlib.suppress(BrokenPipeError):  # refused before the whole message was read
            sent = socket.send_fds(conn, [data], fds) if fds else 0
            if sent < len(data):
                conn.sendall(data[sent:])
        return read_message(conn, MAX_REPLY)


def hand_file(server: HandoffServer, url: str, path: Path, flags: int = os.O_RDONLY) -> dict[str, Any]:
    fd = os.open(path, flags)
    try:
        return hand(server, {"url": url}, [fd])
    finally:
        os.close(fd)


def after_first_step(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """Runs `action` once, right after the server copied the file's first step."""
    real = handoff._Copier.__call__
    done: list[bool] = []

    def step(self: handoff._Copier, *args: int) -> int:
        count = real(self, *args)
        if not done:
            done.append(True)
            action()
        return count

    monkeypatch.setattr(handoff._Copier, "__call__", step)


def test_a_handed_off_file_is_stored_under_the_sha256_of_its_bytes(
    server: HandoffServer, store: FolderBlobStore, source: Path
) -> None:
    # When a client hands off its file for a staging URL
    answer = hand_file(server, url_for(store), source)
    # Then the server answers the SHA-256 and size of what it stored, as a staged PUT's blob, alone
    assert answer == {"sha256": SHA, "size": len(DATA)}
    assert blob_path(store, SHA).read_bytes() == DATA
    assert stored(store) == [blob_path(store, SHA)]
    # And its socket is its user's alone
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(server.path)).st_mode) == 0o700


def test_a_file_over_the_multipart_threshold_is_handed_off_for_its_socket_only_url(
    server: HandoffServer, store: FolderBlobStore, source: Path
) -> None:
    # Given a store whose multipart threshold the file is over (no URL a PUT takes is offered for it)
    store.multipart_threshold = STEP
    assert store.staging_targets(P, [len(DATA)])[0].url is None
    [target] = store.staging.offer_handoff(P, store.staging_targets(P, [len(DATA)]), store.multipart_threshold)
    assert target.url is not None
    assert target.handoff_only
    # When the client hands the file off for the URL offered for the socket
    answer = hand_file(server, target.url, source)
    # Then the server stores it under the SHA-256 of its bytes, alone
    assert answer == {"sha256": SHA, "size": len(DATA)}
    assert stored(store) == [blob_path(store, SHA)]
    assert blob_path(store, SHA).read_bytes() == DATA


def test_the_sdk_takes_the_servers_sha256_for_a_file_that_did_not_change(
    server: HandoffServer, store: FolderBlobStore, source: Path
) -> None:
    assert client_handoff.hand_off(server.path, url_for(store), Stat.of(str(source))) == SHA
    assert blob_path(store, SHA).read_bytes() == DATA


@pytest.mark.parametrize("copy", ["copy_file_range", "sendfile", "read and write"])
def test_where_the_kernel_refuses_a_copy_the_next_way_stores_the_same_blob(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch, copy: str
) -> None:
    # Given a kernel or file system that refuses the in-kernel copies before this one
    def refused(*args: Any) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    for way in ["copy_file_range", "sendfile"][: ["copy_file_range", "sendfile", "read and write"].index(copy)]:
        monkeypatch.setattr(os, way, refused)
    # Then a handoff stores the file all the same
    assert hand_file(server, url_for(store), source) == {"sha256": SHA, "size": len(DATA)}
    assert blob_path(store, SHA).read_bytes() == DATA


def test_the_server_hashes_its_own_copy_not_a_file_changed_under_it(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a client that rewrites its whole file while the server copies it (after its first step)
    changed = os.urandom(len(DATA))
    after_first_step(monkeypatch, lambda: source.write_bytes(changed))
    # When it hands the file off through the SDK
    with pytest.raises(client_handoff.Refused, match="changed"):
        client_handoff.hand_off(server.path, url_for(store), Stat.of(str(source)))
    # Then the SDK takes no SHA-256 for it, and the one blob stored is named by the SHA-256 of its own
    # bytes: the server's copy (the first step as it was, the rest as rewritten), neither file's digest
    [blob] = stored(store)
    held = blob.read_bytes()
    assert blob.name == hashlib.sha256(held).hexdigest()
    assert held == DATA[:STEP] + changed[STEP:]


def test_only_the_servers_own_user_or_root_may_hand_off() -> None:
    own = os.geteuid()
    assert handoff.peer_allowed(own, own)
    assert handoff.peer_allowed(0, own)
    assert not handoff.peer_allowed(own + 1, own)
    one, other = socket.socketpair(socket.AF_UNIX)
    with one, other:
        assert handoff.peer_uid(one) == own  # what the kernel says of the peer


def test_a_peer_of_another_user_is_refused_and_nothing_is_stored(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a peer whose credentials are another user's
    monkeypatch.setattr(handoff, "peer_uid", lambda conn: os.geteuid() + 1)
    # When it hands a file off
    answer = hand_file(server, url_for(store), source)
    # Then it is refused, and nothing is stored
    assert answer["error"]["code"] == "forbidden"
    assert stored(store) == []


def _refusals(store: FolderBlobStore, clock: FakeClock, source: Path, tmp_path: Path) -> dict[str, Any]:
    """Handoffs that must be refused: (message, descriptors to open, the code expected)."""
    url = url_for(store)
    read, write = os.pipe()
    os.write(write, DATA[:100])
    return {
        "a tampered URL": (
            {"url": url.replace(f"size={len(DATA)}", f"size={len(DATA) - 1}")},
            [source],
            "signature_mismatch",
        ),
        "a blob's URL": ({"url": store.upload_targets(P, [(SHA, len(DATA))])[0].url}, [source], "signature_mismatch"),
        "a file of another size": ({"url": url_for(store, len(DATA) + 1)}, [source], "bad_length"),
        "a folder": ({"url": url}, [tmp_path], "not_a_file"),
        "a pipe": ({"url": url}, [read], "not_a_file"),
        "a file open for writing only": ({"url": url}, [(source, os.O_WRONLY)], "not_readable"),
        "a file opened as a path only": ({"url": url}, [(source, os.O_PATH)], "not_readable"),
        "no descriptor": ({"url": url}, [], "invalid_request"),
        "two descriptors": ({"url": url}, [source, source], "invalid_request"),
        "no URL": ({"path": str(source)}, [source], "invalid_request"),
        "not JSON": (HEAD.pack(3) + b"{x}", [source], "invalid_request"),
        "a message too large": (HEAD.pack(handoff.MAX_MESSAGE + 1) + b"{", [source], "too_large"),
        "_close": [read, write],
    }


@pytest.mark.parametrize(
    "case",
    [
        "a tampered URL",
        "a blob's URL",
        "a file of another size",
        "a folder",
        "a pipe",
        "a file open for writing only",
        "a file opened as a path only",
        "no descriptor",
        "two descriptors",
        "no URL",
        "not JSON",
        "a message too large",
    ],
)
def test_a_handoff_that_breaks_a_rule_is_refused_and_stores_nothing(
    server: HandoffServer, store: FolderBlobStore, clock: FakeClock, source: Path, tmp_path: Path, case: str
) -> None:
    cases = _refusals(store, clock, source, tmp_path)
    message, given, code = cases[case]
    fds = []
    try:
        for item in given:
            if isinstance(item, int):
                fds.append(item)
            else:
                path, flags = item if isinstance(item, tuple) else (item, os.O_RDONLY)
                fds.append(os.open(path, flags))
        # When it is handed off
        answer = hand(server, message, fds)
    finally:
        for fd in {*fds, *cases["_close"]}:
            os.close(fd)
    # Then it is refused with the rule's code, and nothing is stored, not even a temporary file
    assert answer["error"]["code"] == code, answer
    assert stored(store) == []


def test_an_expired_url_is_refused(
    server: HandoffServer, store: FolderBlobStore, clock: FakeClock, source: Path
) -> None:
    url = url_for(store)
    clock.at += timedelta(seconds=store.presign_seconds + 1)
    assert hand_file(server, url, source)["error"]["code"] == "url_expired"
    assert stored(store) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [("truncated", "incomplete_body"), ("grown", "bad_length")],
)
def test_a_file_that_shrinks_or_grows_while_it_is_copied_stores_nothing(
    server: HandoffServer,
    store: FolderBlobStore,
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    code: str,
) -> None:
    # Given a file cut short, or made longer, while the server copies it
    def act() -> None:
        if change == "truncated":
            os.truncate(source, 2 * STEP)
        else:
            with source.open("ab") as more:
                more.write(b"more")

    after_first_step(monkeypatch, act)
    # When it is handed off
    answer = hand_file(server, url_for(store), source)
    # Then it is refused, and neither a blob nor a temporary file is left
    assert answer["error"]["code"] == code
    assert stored(store) == []


def test_a_client_gone_during_the_copy_gets_nothing_stored(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a client whose process ends while the server copies its file
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    after_first_step(monkeypatch, client.close)
    ended = threading.Event()
    real = store.receive_staged

    def receive_staged(*args: Any) -> str:
        try:
            return real(*args)
        finally:
            ended.set()

    monkeypatch.setattr(store, "receive_staged", receive_staged)
    fd = os.open(source, os.O_RDONLY)
    try:
        client.connect(server.path)
        socket.send_fds(client, [frame({"url": url_for(store)})], [fd])
        # When the server's copy ends
        assert ended.wait(30)
    finally:
        os.close(fd)
        client.close()
    # Then nothing is installed, and the temporary file is gone
    assert stored(store) == []


def test_a_handoff_over_the_bound_of_those_copying_at_once_is_refused(
    server: HandoffServer, store: FolderBlobStore, source: Path
) -> None:
    # Given as many handoffs copying as the server takes at once
    for _ in range(handoff.MAX_AT_ONCE):
        assert server.slots.acquire(blocking=False)
    # When one more comes, it is refused (its client sends the file over HTTP), and nothing is stored
    assert hand_file(server, url_for(store), source)["error"]["code"] == "busy"
    assert stored(store) == []
    # And once one ends, the next is taken
    server.slots.release()
    assert hand_file(server, url_for(store), source) == {"sha256": SHA, "size": len(DATA)}


def test_a_client_that_sends_no_message_is_refused_in_time(
    server: HandoffServer, store: FolderBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handoff, "MESSAGE_SECONDS", 0.2)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(server.path)
        assert read_message(conn, MAX_REPLY)["error"]["code"] == "timeout"
    assert stored(store) == []


def test_a_stale_socket_of_a_gone_server_is_removed_at_start(store: FolderBlobStore, tmp_path: Path) -> None:
    # Given the socket a killed server left in the folder
    folder = tmp_path / "h"
    folder.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(folder / "1-dead.sock"))
    # When a server starts there
    started = HandoffServer.start(store, folder)
    assert started is not None
    try:
        # Then only its own socket is left
        assert [p.name for p in folder.iterdir()] == [os.path.basename(started.path)]
    finally:
        started.stop()


def staging_request(tmp_path: Path, peer: str, body: bytes, asked: bool = False) -> list[dict[str, Any]]:
    """The ASGI messages the server's application with a handoff socket sends for a staging request
    from `peer` (with `Artreg-Handoff: large` if `asked`)."""
    from artreg.local.asgi import App
    from artreg.local.guard import Guard
    from artreg.local.server import Local

    app = App(Local(tmp_path / "data", "http://127.0.0.1:8080"), Guard.for_server("0.0.0.0", 8080), handoff="/s.sock")
    scope = {
        "type": "http",
        "method": "POST",
        "path": f"/v1/projects/{P}/staging",
        "raw_path": f"/v1/projects/{P}/staging".encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *([(b"artreg-handoff", b"large")] if asked else []),
        ],
        "client": (peer, 5000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        asyncio.run(app(scope, receive, send))
    finally:
        app.pools.shutdown()
    return sent


@pytest.mark.parametrize(("peer", "named"), [("127.0.0.1", True), ("::1", True), ("192.0.2.7", False)])
def test_the_staging_answer_names_the_socket_only_to_a_caller_on_loopback(
    tmp_path: Path, peer: str, named: bool
) -> None:
    # When a staging request from `peer` is answered
    sent = staging_request(tmp_path, peer, b'{"sizes": [1048576]}')
    # Then the socket's path is in the answer's headers only where the caller is on this machine
    start = sent[0]
    assert start["status"] == 200
    assert ((b"artreg-handoff", b"/s.sock") in start["headers"]) == named


@pytest.mark.parametrize(
    ("peer", "asked", "offered"),
    [("127.0.0.1", True, True), ("127.0.0.1", False, False), ("192.0.2.7", True, False)],
)
def test_a_url_over_the_threshold_is_offered_to_a_caller_on_loopback_that_asks_only(
    tmp_path: Path, peer: str, asked: bool, offered: bool
) -> None:
    # When a staging request for a file over the multipart threshold (512 MiB here) and one under it is
    # answered, from `peer`, asking for URLs over the threshold or not (an SDK that cannot hand off)
    sent = staging_request(tmp_path, peer, b'{"sizes": [1073741824, 1048576]}', asked)
    # Then the large one gets a URL, for the socket only, where the caller is on this machine and asked
    assert sent[0]["status"] == 200
    large, small = json.loads(sent[1]["body"])["staging"]
    assert (large["url"] is not None, large["handoff_only"]) == (offered, offered)
    assert small["url"] is not None
    assert not small["handoff_only"]


def test_a_handoffs_copy_and_hash_run_below_the_event_loops_cpu_priority(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a look at the priority of the threads copying and hashing, taken in the middle of the copy
    seen: dict[str, list[int]] = {}

    def look() -> None:
        seen["copy"] = [os.getpriority(os.PRIO_PROCESS, threading.get_native_id())]
        hashers = [t.native_id for t in threading.enumerate() if t.name == "artreg-handoff-hash"]
        seen["hash"] = [os.getpriority(os.PRIO_PROCESS, tid) for tid in hashers if tid is not None]

    after_first_step(monkeypatch, look)
    # When a client hands off its file
    answer = hand_file(server, url_for(store), source)
    # Then it is stored, and both threads ran at a lower priority (a higher nice) than the server's others
    # (here the test's own thread, as uvicorn's event loop), which keep theirs
    assert answer["sha256"] == SHA
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen["copy"][0] > own
    assert seen["hash"]
    assert all(nice > own for nice in seen["hash"])


def test_handoffs_beyond_those_copying_wait_their_turn_then_are_refused_in_time(
    server: HandoffServer, store: FolderBlobStore, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given as many handoffs copying as the server copies at once
    for _ in range(handoff.COPIES_AT_ONCE):
        assert server.copying.acquire(blocking=False)
    # When one more comes and no copy ends within the wait, it is refused (its client sends the file
    # over HTTP), and nothing is stored
    monkeypatch.setattr(handoff, "QUEUE_SECONDS", 0.2)
    assert hand_file(server, url_for(store), source)["error"]["code"] == "busy"
    assert stored(store) == []
    # And one that comes while a copy is under way is copied once it ends, not refused
    monkeypatch.setattr(handoff, "QUEUE_SECONDS", 30.0)
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(target=lambda: answers.append(hand_file(server, url_for(store), source)))
    waiting.start()
    waiting.join(0.3)
    assert waiting.is_alive()
    assert stored(store) == []
    server.copying.release()
    waiting.join(30)
    assert answers == [{"sha256": SHA, "size": len(DATA)}]
