"""How a large blob is cut into parts, the same on S3 and in the local folder: S3's limit of 10,000
parts an upload, each a whole number of MiB, no smaller than the store's preferred part size."""

from __future__ import annotations

import math

MiB = 1024**2
MAX_PARTS = 10_000


def part_size(size: int, preferred: int) -> int:
    return max(preferred, math.ceil(size / MAX_PARTS / MiB) * MiB)


def part_count(size: int, part_size: int) -> int:
    return math.ceil(size / part_size)
