"""The batches of a log made one ahead on a thread of their own (artreg.client.upload._made_ahead):
the same batches in the same order, an error in making one raised where it is asked for, and a log
that stops early stops the walk too."""

from __future__ import annotations

import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from artreg.client.upload import _made_ahead


def test_the_batches_come_in_order_each_made_on_the_walker_before_it_is_asked_for() -> None:
    # Given batches that note the thread making them
    made: list[str] = []

    def batches() -> Generator[Any]:
        for i in range(3):
            made.append(threading.current_thread().name)
            yield ([i], [])

    # When they are taken through the walker
    with ThreadPoolExecutor(1, thread_name_prefix="walker") as walker:
        ahead = _made_ahead(batches(), walker)
        first = next(ahead)
        walker.submit(lambda: None).result()  # the step under way is done
        # Then the second was made while the first was in use, on the walker, and all come in order
        assert (first, len(made)) == (([0], []), 2)
        assert [first, *ahead] == [([0], []), ([1], []), ([2], [])]
    assert all(name.startswith("walker") for name in made)


def test_an_error_in_a_batch_is_raised_where_it_is_asked_for() -> None:
    # Given batches whose second fails (a file vanished while walked)
    def batches() -> Generator[Any]:
        yield ([0], [])
        raise FileNotFoundError("gone")

    with ThreadPoolExecutor(1) as walker:
        ahead = _made_ahead(batches(), walker)
        # When they are taken, Then the first comes and the error is raised at the second
        assert next(ahead) == ([0], [])
        with pytest.raises(FileNotFoundError, match="gone"):
            next(ahead)


def test_a_log_that_stops_early_closes_the_walk() -> None:
    # Given endless batches that note when they are closed
    closed = threading.Event()

    def batches() -> Generator[Any]:
        try:
            i = 0
            while True:
                yield ([i], [])
                i += 1
        finally:
            closed.set()

    with ThreadPoolExecutor(1) as walker:
        ahead = _made_ahead(batches(), walker)
        next(ahead)
        # When the log stops (its request failed)
        ahead.close()
        # Then the walk is closed, no batch is made after it
        assert closed.is_set()
