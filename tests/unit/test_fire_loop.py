"""The fire loop's slot bookkeeping (scheduler/fire.py) without a server: which slots a term
starts with, what a change does, what a clock jump skips. Firing itself is integration."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ajc_gitops.gowire import cron
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.scheduler.fire import FireLoop
from ajc_gitops.scheduler.follow import FollowedSchedule

S = 1_000_000_000
T0 = 1_800_000_000  # a whole Unix second


class Leader:
    is_leader = True
    term = 1


def followed(name: str, spec: str, created_s: int, revision: int = 1, deadline_s: int = 0) -> FollowedSchedule:
    task = ScheduledTask(name, spec, "Q", "t", None, deadline_s * S, 0, GoTime(created_s * S))
    return FollowedSchedule(name, task, cron.parse_standard(spec), revision)


def loop(schedules: dict[str, FollowedSchedule], now_s: int, *, floor: int | None = None, window_s: int | None = 60):
    window = None if window_s is None else timedelta(seconds=window_s)
    fire = FireLoop(
        None,  # type: ignore[arg-type]  # never enqueues here
        lambda: schedules,
        Leader(),
        None,  # type: ignore[arg-type]
        floor=lambda _now: floor,
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
        None,  # type: ignore[arg-type]
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
