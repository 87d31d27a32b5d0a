"""A TCP proxy that loses one answer, the way a network does: the request reaches the server, which
acts on it, and the client's connection drops before any byte of the answer comes back. Used to test
that a retried POST acts once (API.md, `Idempotency-Key`)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable

# the request the issue found making two versions: the first POST .../uploads with "commit": true
COMMIT_AT_ONCE = re.compile(
    rb"^POST /v1/projects/[^/ ]+/artifacts/[^/ ]+/uploads HTTP/1\.[01]\r\n.*\"commit\"\s*:\s*true", re.S
)


def commit_at_once(request: bytes) -> bool:
    return COMMIT_AT_ONCE.search(request) is not None


class DroppingProxy:
    """Forwards 127.0.0.1:`port` to `upstream` byte for byte, except that the answer to the first
    request for which `drop(request bytes)` holds is swallowed and the client's connection closed."""

    def __init__(self, upstream: tuple[str, int], drop: Callable[[bytes], bool] = commit_at_once) -> None:
        self.upstream = upstream
        self.drop = drop
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        for sock in list(self._open):
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        self._open += [client, server]
        request = bytearray()
        dropping = threading.Event()

        def answers() -> None:  # server -> client
            while data := _recv(server):
                if dropping.is_set():  # the server answered: it acted. The client never hears of it
                    break
                request.clear()  # an answer ends the request before it (no pipelining)
                client.sendall(data)
            _close(client)
            _close(server)

        threading.Thread(target=answers, daemon=True).start()
        while data := _recv(client):  # client -> server
            request.extend(data)
            with self._lock:
                if not self.dropped and not dropping.is_set() and self.drop(bytes(request)):
                    self.dropped += 1
                    dropping.set()  # before the last bytes go: the answer cannot overtake the flag
            try:
                server.sendall(data)
            except OSError:
                break
        _close(server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
