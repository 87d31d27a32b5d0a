"""The handoff's messages, the same for the SDK and `artreg server` (`local.handoff` says the rest):
each a 4-byte big-endian length and a JSON object, on a Unix socket whose path a staging answer names
in its `Artreg-Handoff` header."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = "Artreg-Handoff"  # a staging answer's header: the socket's path, for clients on the server's machine
# a staging request's `Artreg-Handoff`: the client hands off files over the multipart threshold too
# (offered URLs for the socket only: `local.handoff`), and sends them in parts if that fails
LARGE = "large"
HEAD = struct.Struct(">I")
MAX_REPLY = 4096  # a SHA-256 and a size, or an error


def frame(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    return HEAD.pack(len(data)) + data


def parse(data: bytes) -> dict[str, Any]:
    """A message's JSON object (without its length); ValueError if it is none."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("a handoff message is a JSON object")
    return body


def read_message(conn: socket.socket, limit: int) -> dict[str, Any]:
    """One message, without descriptors (the answer's way); ValueError if it is over `limit` bytes or
    not a JSON object, ConnectionError if the connection ends first."""
    data = b""
    while len(data) < HEAD.size or len(data) < HEAD.size + HEAD.unpack_from(data)[0]:
        if len(data) >= HEAD.size and HEAD.unpack_from(data)[0] > limit:
            raise ValueError(f"a handoff message over {limit} bytes")
        piece = conn.recv(limit + HEAD.size - len(data))
        if not piece:
            raise ConnectionError("the handoff's connection ended before its answer")
        data += piece
    return parse(data[HEAD.size :])
