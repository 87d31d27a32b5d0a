"""How a large blob is cut into parts, the same on S3 and in the local folder: S3's limit of 10,000
parts an upload, each a whole number of MiB, no smaller than the store's preferred part size."""

from __future__ import annotations

import math

MiB = 1024**2
MAX_PARTS = 10_000
# S3's smallest part, and the least threshold and part size a store is configured with
MIN_PART_SIZE = 5 * MiB
# presigned URLs one answer carries at most: every part of one blob of the largest size. At about 560
# bytes a URL (long-lived keys) an answer stays near 6 MB, what a Lambda returns; a Lambda's session
# token makes a URL about 1.7 kB, so deployed only paging part URLs would bound the answer
MAX_URLS = MAX_PARTS


def part_size(size: int, preferred: int) -> int:
    return max(preferred, math.ceil(size / MAX_PARTS / MiB) * MiB)


def part_count(size: int, part_size: int) -> int:
    return math.ceil(size / part_size)


def url_count(size: int, threshold: int, preferred: int) -> int:
    """The presigned URLs a missing blob comes with: one PUT, or one a part over the threshold."""
    return 1 if size <= threshold else part_count(size, part_size(size, preferred))


def most_urls(size: int) -> int:
    """`url_count` under any store's settings (the least threshold and part size): a client's bound."""
    return url_count(size, MIN_PART_SIZE, MIN_PART_SIZE)
