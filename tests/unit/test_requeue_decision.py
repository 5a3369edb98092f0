"""When a stranded task's work item is resent, and when the scheduler gives up
(``scheduler/requeue.py:next_attempt``): inside the queue's duplicate window less a margin,
before the task's deadline, with a delay doubling from 1 s to 8 s."""

from __future__ import annotations

import pytest

from ajc_gitops.model import NANOS_PER_SECOND
from ajc_gitops.scheduler.requeue import FIRST_DELAY_S, MAX_DELAY_S, next_attempt

S = NANOS_PER_SECOND
WINDOW = 120 * S
MARGIN = 10 * S
STORED = 1_000 * S


def verdict(age_s: float, attempts: int = 0, deadline_s: float | None = None, window: int = WINDOW):
    return next_attempt(
        now_ns=STORED + int(age_s * S),
        stored_ns=STORED,
        attempts=attempts,
        window_ns=window,
        deadline_ns=None if deadline_s is None else STORED + int(deadline_s * S),
        margin_ns=MARGIN,
    )


@pytest.mark.parametrize(("attempts", "delay_s"), [(0, 1), (1, 2), (2, 4), (3, 8), (4, 8), (60, 8)])
def test_delay_doubles_up_to_the_cap(attempts, delay_s):
    assert verdict(5, attempts).at_ns == STORED + (5 + delay_s) * S
    assert FIRST_DELAY_S <= delay_s <= MAX_DELAY_S


def test_a_fresh_task_is_retried_a_second_later():
    assert verdict(0).at_ns == STORED + S


def test_last_attempt_is_pulled_in_to_the_edge_of_the_window():
    # 105 s old, 8 s delay would land at 113 s, past 120 - 10: try once more at 110 s.
    assert verdict(105, attempts=5).at_ns == STORED + 110 * S


def test_gives_up_at_the_edge_of_the_window():
    result = verdict(110, attempts=5)
    assert result.at_ns is None and "120s duplicate window" in result.reason
    assert verdict(500).at_ns is None


def test_the_window_read_from_the_stream_counts():
    assert verdict(100, window=300 * S).at_ns == STORED + 101 * S
    assert verdict(100, window=60 * S).at_ns is None


def test_no_window_means_no_resend():
    # A stream without duplicate tracking: a resend could make a second item.
    assert verdict(0, window=0).at_ns is None


def test_gives_up_before_the_deadline():
    result = verdict(29.5, deadline_s=30)
    assert result.at_ns is None and "deadline" in result.reason
    assert verdict(10, deadline_s=30).at_ns == STORED + 11 * S


def test_deadline_later_than_the_window_changes_nothing():
    assert verdict(50, deadline_s=3600).at_ns == STORED + 51 * S
    assert verdict(115, deadline_s=3600).at_ns is None
