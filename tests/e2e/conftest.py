"""The end-to-end tests' server: `artreg server` run as a user runs it (tests.support.server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = RunningServer(tmp_path / "data")
    running.start()
    yield running
    running.stop()
