"""The fire path's shortcuts give exactly what the plain code gives (issue 11, burst): a slot's
Task built from integer seconds, cached time and name encodings."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.gowire.godate import GoTimeRangeError, from_unix
from ajc_gitops.gowire.gomarshal import EncodeError, marshal_name, marshal_string, marshal_time
from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask
from ajc_gitops.scheduler.tasks import InvalidTaskError, build_slot_task, build_task

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
TYPES = st.sampled_from(["email:new", "a_b-c", "x", "bad type", "x\n", ""]) | TEXT
SLOTS = st.integers(-62_135_596_900, 253_402_300_900) | st.integers(0, 2_000_000_000)
schedules = st.builds(
    ScheduledTask,
    name=TEXT,
    schedule=st.just("@every 1m"),
    queue=TEXT,
    task_type=TYPES,
    payload=st.none() | st.binary(max_size=8),
    deadline_ns=st.sampled_from([0, -1, NANOS_PER_SECOND]) | INT64,
    max_tries=st.sampled_from([0, -1, 5]) | INT64,
    created_at=st.builds(GoTime, INT64),
)


def _outcome(build: object) -> object:
    try:
        return build()  # type: ignore[operator]
    except (InvalidTaskError, GoTimeRangeError) as exc:
        return type(exc), str(exc)


@given(schedules, SLOTS, st.builds(GoTime, INT64))
@example(ScheduledTask("a", "@every 1m", "Q", "t:a"), 9_223_372_037, GoTime(0))  # past int64 ns: 2262
def test_slot_task_is_build_task_at_the_slot(schedule: ScheduledTask, slot_s: int, created: GoTime) -> None:
    expected = _outcome(lambda: build_task(schedule, from_unix(slot_s), created=created))
    assert _outcome(lambda: build_slot_task(schedule, slot_s, created=created)) == expected


def _formatted(t: GoTime) -> bytes | str:
    try:
        return b'"' + format_rfc3339nano(t).encode() + b'"'
    except ValueError as exc:
        return f"json: error calling MarshalJSON for type time.Time: {exc}"


@given(st.builds(GoTime, INT64, st.integers(-(99 * 3600), 99 * 3600)))
def test_cached_time_encoding_is_the_formatted_time(t: GoTime) -> None:
    for _ in range(2):  # a miss, then a hit
        try:
            got: bytes | str = marshal_time(t)
        except EncodeError as exc:
            got = str(exc)
        assert got == _formatted(t)


@given(TEXT | st.text())
def test_cached_name_encoding_is_the_string_encoding(value: str) -> None:
    assert marshal_name(value) == marshal_string(value)
    assert marshal_name(value) == marshal_string(value)
