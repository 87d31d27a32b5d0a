"""Pages of a store listing: the page size asked for, a file page's offset, and reading a listing
that is filtered on the way in as few store reads as a page needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from artreg.model.errors import Invalid
from artreg.registry import cursors
from artreg.registry.policy import Policy

T = TypeVar("T")


def limit(policy: Policy, asked: int | None) -> int:
    if asked is None:
        return policy.default_page
    if not 1 <= asked <= policy.max_page:
        raise Invalid(f"limit must be between 1 and {policy.max_page}", details={"field": "limit"})
    return asked


def offset(cursor: str | None) -> int:
    return cursors.decode(cursor, cursors.AtOffset).offset


def scan(
    fetch: Callable[[Any, int], list[T]],
    position: Callable[[T], Any],
    start: Any,
    first: int,
    batch: int = 100,
) -> Iterator[T]:
    """Every item of a store listing from `start` on: first the `first` a page needs when nothing is
    filtered out (a page of 10 reads 10 items, not a batch), then in batches."""
    size = first
    while True:
        items = fetch(start, size)
        yield from items
        if len(items) < size:
            return
        start = position(items[-1])
        size = max(first, batch)


def take(items: Iterator[T], limit: int, keep: Callable[[T], bool]) -> Iterator[T]:
    """The first `limit` items kept, reading no further than the last of them."""
    taken = 0
    for item in items:
        if keep(item):
            yield item
            taken += 1
            if taken == limit:
                return
