"""``status --format json`` writes each slot itself (the standard encoder pretty-prints in
Python, seconds at 240,000 slots); what it prints is, byte for byte, ``json.dumps`` of the
document it specifies, whatever the report holds."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ajc_gitops.render.status import render_json, status_document
from ajc_gitops.status.model import (
    LeaderStatus,
    ScheduleState,
    ScheduleStatus,
    SlotKind,
    SlotStatus,
    SlotTask,
    StatusReport,
)

TEXT = st.text(max_size=12)  # any code point: quotes, backslashes, newlines, non-ASCII
SECONDS = st.integers(0, 253_402_300_799)
LAG = st.none() | st.floats(-1e7, 1e7, allow_nan=False) | st.integers(-100, 100).map(float)
STATES = st.sampled_from(["new", "active", "retry", "complete", "expired", "terminated", "queue_error"]) | TEXT
TASKS = st.none() | st.builds(
    SlotTask,
    TEXT,
    STATES,
    st.integers(-5, 2**40),
    TEXT,
    SECONDS.map(lambda s: s * 10**9 + 7),
    st.sampled_from(["id", "scan"]),
)
SLOTS = st.builds(SlotStatus, SECONDS, st.sampled_from(list(SlotKind)), TASKS, LAG, TEXT)
SCHEDULES = st.builds(
    ScheduleStatus,
    TEXT,
    st.sampled_from(list(ScheduleState)),
    TEXT,
    TEXT,
    TEXT,
    TEXT,
    st.lists(SECONDS, max_size=3).map(tuple),
    st.lists(SLOTS, max_size=4).map(tuple),
    st.booleans(),
)
REPORTS = st.builds(
    StatusReport,
    TEXT,
    SECONDS,
    SECONDS,
    st.builds(LeaderStatus, st.none() | TEXT, st.sampled_from([None, "go", "ajc-gitops"]), st.none() | SECONDS, TEXT),
    st.lists(SCHEDULES, max_size=4).map(tuple),
    st.lists(TEXT, max_size=2).map(tuple),
    st.lists(TEXT, max_size=2).map(tuple),
    st.none() | SECONDS,
)


@given(REPORTS)
def test_the_json_is_the_standard_encoding_of_the_document(report: StatusReport) -> None:
    assert render_json(report) == json.dumps(status_document(report), indent=2) + "\n"


def test_a_name_that_looks_like_the_slots_member_changes_nothing() -> None:
    odd = '\n      "slots": []'
    slot = SlotStatus(
        1_780_000_000, SlotKind.FIRED, SlotTask(odd, "new", 0, odd, 1_780_000_000 * 10**9, "id"), 0.5, odd
    )
    schedule = ScheduleStatus(odd, ScheduleState.ACTIVE, odd, odd, odd, odd, (), (slot, slot))
    report = StatusReport(odd, 1, 0, LeaderStatus(odd, "go", None, odd), (schedule, schedule), (odd,), (odd,))
    assert render_json(report) == json.dumps(status_document(report), indent=2) + "\n"
