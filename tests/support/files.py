"""Large files for the end-to-end tests, and their digests, computed here rather than by the SDK under
test."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MiB = 1024**2


def write_random(path: Path, size: int, chunk: int = 8 * MiB) -> str:
    """`size` bytes of one random block repeated with a counter in front, so that no two chunks (and
    no two parts) are alike, and no two files; answers their SHA-256."""
    block = bytearray(os.urandom(chunk))
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for i in range(size // chunk):
            block[:8] = i.to_bytes(8, "big")
            out.write(block)
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
