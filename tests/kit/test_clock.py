"""UK clock time for stored UTC times: GMT in winter, BST in summer, naive values read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from app.kit.clock import uk_time


def test_winter_is_gmt_and_summer_is_bst() -> None:
    assert uk_time(datetime(2031, 1, 15, 9, 5, tzinfo=UTC)) == "2031-01-15 09:05"
    assert uk_time(datetime(2031, 7, 15, 9, 5, tzinfo=UTC), "%H:%M") == "10:05"


def test_a_naive_stored_time_is_utc_and_none_is_empty() -> None:
    assert uk_time(datetime(2031, 7, 15, 23, 30)) == "2031-07-16 00:30"
    assert uk_time(None) == ""
