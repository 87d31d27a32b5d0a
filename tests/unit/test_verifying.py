"""The one rule of what a commit makes of blobs not stored trusted (artreg.registry.verifying)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from artreg.model.errors import Conflict
from artreg.registry.records import UnsettledBlob
from artreg.registry.verifying import check_stored

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
A, B = "a" * 64, "b" * 64


def _raised(*blobs: UnsettledBlob) -> Conflict:
    with pytest.raises(Conflict) as raised:
        check_stored(blobs, NOW, HOUR)
    return raised.value


def test_nothing_unsettled_is_no_conflict() -> None:
    check_stored([], NOW, HOUR)


def test_a_verification_within_the_window_is_waited_for_with_retry_after_from_the_sizes() -> None:
    small = _raised(UnsettledBlob(A, 10, NOW - timedelta(minutes=59)))
    assert (small.code, small.retry_after) == ("blobs_verifying", 5)
    assert small.details["verifying"] == [{"sha256": A, "size": 10, "since": "2026-12-01T11:01:00+00:00"}]
    large = _raised(UnsettledBlob(A, 50 * 1024**3, NOW))
    assert large.retry_after == 60


def test_a_verification_as_old_as_the_window_is_missing_and_missing_wins() -> None:
    stale = _raised(UnsettledBlob(A, 10, NOW - HOUR))
    assert (stale.code, stale.details["missing"]) == ("blobs_missing", [{"sha256": A, "size": 10}])
    both = _raised(UnsettledBlob(A, 10, NOW), UnsettledBlob(B, 20))
    assert (both.code, both.details["missing"]) == ("blobs_missing", [{"sha256": B, "size": 20}])
