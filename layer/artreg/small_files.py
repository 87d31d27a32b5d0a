"""Reading a small file whole, the one way the SDK (a bundle's files, sent) and the local store (a
bundle's blobs, served) both do it."""

from __future__ import annotations

import os


def read_small(path: str, size: int) -> bytes:
    """The bytes of a file expected to hold `size`, at most one byte more (enough to tell that it is
    longer), read with plain system calls: for a file of a few bytes, a buffered `open()` costs as much
    again as the read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        pieces, got = [], 0
        while got <= size and (piece := os.read(fd, size + 1 - got)):
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)
    finally:
        os.close(fd)
