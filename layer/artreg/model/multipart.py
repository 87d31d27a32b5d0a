"""How a large blob is cut into parts, the same on S3 and in the local folder: at most `MAX_URLS` parts
(fewer than S3's 10,000, so that every part's URL fits in one answer), each a whole number of MiB, no
smaller than the store's preferred part size."""

from __future__ import annotations

import math

MiB = 1024**2
# S3's smallest part, and the least threshold and part size a store is configured with
MIN_PART_SIZE = 5 * MiB
# Presigned URLs one answer carries at most, and so the most parts a blob is cut into (S3 would take
# 10,000): deployed, a URL
# carries the Lambda's session token and is about 1.7 kB, so 2,000 of them (3.4 MB) keep an answer within
# the 6 MB a Lambda returns, with room for the rest of it. A larger blob gets larger parts instead: S3
# takes parts of up to 5 GiB, so 2,000 parts hold 10 TiB, more than S3's largest object (5 TiB).
MAX_URLS = 2_000
MAX_PART_SIZE = 5 * 1024**3


def part_size(size: int, preferred: int) -> int:
    """The preferred part size, or the least whole number of MiB that cuts the blob into `MAX_URLS` parts."""
    return min(MAX_PART_SIZE, max(preferred, math.ceil(size / MAX_URLS / MiB) * MiB))


def part_count(size: int, part_size: int) -> int:
    return math.ceil(size / part_size)


def url_count(size: int, threshold: int, preferred: int) -> int:
    """The presigned URLs a missing blob comes with: one PUT, or one a part over the threshold."""
    return 1 if size <= threshold else part_count(size, part_size(size, preferred))


def most_urls(size: int) -> int:
    """`url_count` under any store's settings (the least threshold and part size): a client's bound."""
    return url_count(size, MIN_PART_SIZE, MIN_PART_SIZE)
