"""Handoff, the SDK's side: a large new file staged on `artreg server` running on this machine is not
sent over HTTP but handed to the server as an open file descriptor over its Unix socket (SCM_RIGHTS),
which a staging answer names (`Artreg-Handoff`) to clients on loopback. The server copies the file in
the kernel, hashes its own copy and stores it as a staged PUT's body (`artreg.local.handoff`, which
argues why that is safe); it answers the SHA-256 it computed.

The SDK does not hash the file itself then: it takes the server's SHA-256 for the file if the
file's stat (size, mtime, ctime, inode, device) is the same before it is opened, on the descriptor
handed off, and after the answer, the rule by which its hash cache knows a file unchanged. Whatever
the file did meanwhile, the blob is stored under the SHA-256 of the bytes the server holds; a file
that changed is hashed again and sent the usual way. Any failure (no socket: another machine, a
container, an older server; a refusal; no SCM_RIGHTS, as on Windows) leaves the file to the
staged PUT over HTTP, or, for one over the multipart threshold (whose URL is for the socket only), to
the usual path: hashed, then sent in its resumable parts (`client.staging`).
"""

from __future__ import annotations

import contextlib
import os
import socket

from artreg.client.hashcache import Stat
from artreg.model.handoff import MAX_REPLY, frame, read_message
from artreg.model.names import SHA256_RE

SUPPORTED = hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")
CONNECT_SECONDS = 5.0
# the server copies the file before it answers: a slow disk's pace, with room (a timeout falls back)
ANSWER_SECONDS = 30.0
ANSWER_BYTES_PER_SECOND = 20 * 1024**2


class Refused(Exception):
    """The server did not take the file, or the file changed: it goes over HTTP."""


def hand_off(socket_path: str, url: str, stat: Stat) -> str:
    """Hands the file of `stat` to the server for the staging URL `url`; answers the SHA-256 the
    server stored it under. Refused, or OSError (no such socket, a timeout), where it did not."""
    fd = os.open(stat.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        opened = Stat(stat.path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)
        if opened != stat:
            raise Refused("the file changed before it was handed off")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(CONNECT_SECONDS)
            conn.connect(socket_path)
            message = frame({"url": url})
            with contextlib.suppress(BrokenPipeError):  # refused before it read the message: its answer says why
                sent = socket.send_fds(conn, [message], [fd])
                if sent < len(message):
                    conn.sendall(message[sent:])
            conn.settimeout(ANSWER_SECONDS + stat.size / ANSWER_BYTES_PER_SECOND)
            try:
                answer = read_message(conn, MAX_REPLY)
            except ValueError as error:
                raise Refused(f"the server's answer is not one: {error}") from None
    finally:
        os.close(fd)
    refusal = answer.get("error")
    if refusal is not None:
        detail = refusal if isinstance(refusal, dict) else {}
        raise Refused(f"{detail.get('code')}: {detail.get('message')}")
    sha256 = answer.get("sha256")
    if not isinstance(sha256, str) or not SHA256_RE.fullmatch(sha256) or answer.get("size") != stat.size:
        raise Refused(f"the server's answer names no blob of {stat.size} bytes")
    if Stat.of(stat.path) != stat:
        raise Refused("the file changed while the server copied it")
    return sha256
