"""The fire loop's slot bookkeeping (scheduler/fire.py) without a server: which slots a term
starts with, what a change does, what a clock jump skips. Firing itself is integration."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ajc_gitops.gowire import cron
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.scheduler.fire import FireLoop
from ajc_gitops.scheduler.follow import FollowedSchedule
from ajc_gitops.scheduler.metrics import SchedulerMetrics

S = 1_000_000_000
T0 = 1_800_000_000  # a whole Unix second


class Leader:
    is_leader = True
    term = 1


def followed(name: str, spec: str, created_s: int, revision: int = 1, deadline_s: int = 0) -> FollowedSchedule:
    task = ScheduledTask(name, spec, "Q", "t", None, deadline_s * S, 0, GoTime(created_s * S))
    return FollowedSchedule(name, task, cron.parse_standard(spec), revision)


def loop(
    schedules: dict[str, FollowedSchedule],
    now_s: int,
    *,
    floor: int | None = None,
    window_s: int | None = 60,
    handled: int | None = None,
    metrics: SchedulerMetrics | None = None,
):
    window = None if window_s is None else timedelta(seconds=window_s)
    fire = FireLoop(
        None,  # type: ignore[arg-type]  # never enqueues here
        lambda: schedules,
        Leader(),
        metrics or SchedulerMetrics("t"),
        floor=lambda _now: floor,
        handled_through=lambda _revision: handled,
        clock=lambda: now_s * S,
        window=window,
    )
    asyncio.run(fire._begin(now_s * S))
    return fire


def due(fire: FireLoop, now_s: int) -> list[tuple[str, int, bool]]:
    return [(d.name, d.slot_s - T0, d.catchup) for d in fire._pop_due(now_s, now_s * S)]


def test_a_term_catches_up_the_window_then_fires_on_time():
    fire = loop({"a": followed("a", "@every 10s", T0 - 1000)}, T0)
    # (now - window, now]: -60 is out, and the slot at the term's start is on time.
    assert due(fire, T0) == [("a", -60 + k * 10, True) for k in range(1, 6)] + [("a", 0, False)]
    assert due(fire, T0 + 9) == []
    assert due(fire, T0 + 10) == [("a", 10, False)]


def test_catch_up_stops_at_the_group_floor_and_at_created_at():
    fire = loop({"a": followed("a", "@every 10s", T0 - 1000)}, T0, floor=(T0 - 25) * S)
    assert [slot for _, slot, _ in due(fire, T0)] == [-20, -10, 0]
    assert T0 % 60 == 0
    fire = loop({"b": followed("b", "* * * * *", T0 - 30)}, T0 + 100, window_s=3600)
    assert due(fire, T0 + 100) == [("b", 0, True), ("b", 60, True)]  # nothing before created_at


def test_the_default_window_is_the_deadline():
    fire = loop({"a": followed("a", "@every 10s", T0 - 1000, deadline_s=30)}, T0, window_s=None)
    assert [slot for _, slot, _ in due(fire, T0)] == [-20, -10, 0]


def test_a_replaced_schedule_never_fires_its_new_definition_retroactively():
    schedules = {"a": followed("a", "@every 10s", T0 - 1000)}
    fire = loop(schedules, T0 - 1, window_s=0)
    assert due(fire, T0) == [("a", 0, False)]
    fire.schedule_changed("a", followed("a", "@every 1s", T0 - 1000, revision=2))
    fire._apply_changes((T0 + 5) * S)
    assert due(fire, T0 + 6) == [("a", 6, False)]
    fire.schedule_changed("a", None)
    fire._apply_changes((T0 + 6) * S)
    assert due(fire, T0 + 30) == []


def test_a_clock_jump_skips_what_left_the_window():
    fire = loop({"a": followed("a", "@every 1s", T0 - 1000)}, T0, window_s=10)
    due(fire, T0)
    jumped = T0 + 3600
    slots = [slot for _, slot, _ in due(fire, jumped)]
    assert slots and min(slots) >= 3600 - 10 - 5  # window plus the late grace


def test_a_previous_leaders_progress_saves_re_attempts_but_only_for_records_it_knew():
    schedules = {
        "a": followed("a", "@every 10s", T0 - 1000, revision=5),
        "b": followed("b", "@every 10s", T0 - 1000, revision=9),
    }
    fire = FireLoop(
        None,  # type: ignore[arg-type]
        lambda: schedules,
        Leader(),
        SchedulerMetrics("t"),
        floor=lambda _now: None,
        handled_through=lambda revision: T0 - 15 if revision <= 7 else None,
        clock=lambda: T0 * S,
        window=timedelta(seconds=60),
    )
    asyncio.run(fire._begin(T0 * S))
    got = due(fire, T0)
    assert [slot for name, slot, _ in got if name == "a"] == [-10, 0]
    assert [slot for name, slot, _ in got if name == "b"] == [-50, -40, -30, -20, -10, 0]
    fire._mark_progress(T0 * S)
    assert fire.progress == (T0, 9)


def missed(metrics: SchedulerMetrics, name: str) -> float:
    return metrics.value("ajc_gitops_scheduler_missed_slots_total", schedule=name) or 0


def test_slots_nobody_fired_since_a_previous_leaders_progress_count_as_missed():
    metrics = SchedulerMetrics("t")
    # The previous leader fired through T0 - 300; the window reaches back to T0 - 60.
    loop({"a": followed("a", "@every 10s", T0 - 1000)}, T0, handled=T0 - 300, metrics=metrics)
    assert missed(metrics, "a") == 24  # T0-290 .. T0-60
    quiet = SchedulerMetrics("t")
    loop({"a": followed("a", "@every 10s", T0 - 1000)}, T0, handled=None, metrics=quiet)
    assert missed(quiet, "a") == 0  # nobody recorded how far they fired: cannot tell
    behind_go = SchedulerMetrics("t")
    loop({"a": followed("a", "* * * * *", T0 - 10_000)}, T0, handled=T0 - 600, floor=(T0 - 200) * S, metrics=behind_go)
    assert missed(behind_go, "a") == 3  # (floor, T0 - 60]: a Go leader may have fired the rest


def test_slots_that_leave_the_window_during_a_stall_count_as_missed_and_next_fire_moves_on():
    metrics = SchedulerMetrics("t")
    fire = loop({"a": followed("a", "@every 10s", T0 - 1000)}, T0, metrics=metrics)
    due(fire, T0)
    assert metrics.value("ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds", schedule="a") == T0 + 10
    due(fire, T0 + 3600)  # the loop stalled for an hour
    assert missed(metrics, "a") == 3600 // 10 - 60 // 10 - 1  # all but the window (and its grace)
    fire._report.term_ended()
    assert metrics.value("ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds", schedule="a") is None


def test_a_terms_catch_up_is_logged_once_with_its_bounds(caplog):
    fire = loop({"a": followed("a", "@every 10s", T0 - 1000), "b": followed("b", "@hourly", T0 - 9000)}, T0)
    for d in fire._pop_due(T0, T0 * S):
        fire._report.fired(d.name, d.slot_s, catchup=d.catchup)
    with caplog.at_level("INFO"):
        fire._report.idle()
        fire._report.idle()
    lines = [r.getMessage() for r in caplog.records if "caught up" in r.getMessage()]
    assert len(lines) == 1
    assert "caught up 5 missed slot(s) of 1 schedule(s) (a), back to " in lines[0]
    assert "--catchup-window 1m0s" in lines[0]
