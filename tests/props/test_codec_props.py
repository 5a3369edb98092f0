"""Properties of the record codec: decoding any bytes gives a result or our error, never
another exception; encoding then decoding gives the task back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.codec import (
    DecodeError,
    decode_go,
    decode_scheduled_task,
    encode_scheduled_task,
    fire_publish_size,
    go_json_marshal,
    header_block_size,
)
from ajc_gitops.gowire.gotime import _JSON_LAYOUT as JSON_LAYOUT
from ajc_gitops.gowire.gotime import GoTimeParseError, parse_json_time
from ajc_gitops.gowire.gotime import _parse as gotime_parse
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask
from ajc_gitops.names import EXPECTED_LAST_SUBJECT_SEQ
from ajc_gitops.scheduler.tasks import fire_record

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Local seconds for 0000-01-01T00:00:00 and 9999-12-31T23:59:59, where Go's MarshalJSON works.
LOCAL_MIN, LOCAL_MAX = -62_167_219_200, 253_402_300_799
KEY_NAMES = (
    ["name", "NAME", "\u017fchedule", "queue", "tas\u212a_type", "payload", "Deadline", "max_tries",
     "MaxTries", "created_at", "x", ""]
)  # fmt: skip
KEYS = st.sampled_from(KEY_NAMES)
JSONISH = st.binary().map(bytes) | st.text(alphabet='{}[]",:\\ 0123456789-.eEtrufalsn\u00e9').map(
    str.encode
)


def _valid_kind(result_error: DecodeError | None) -> bool:
    return result_error is None or result_error.kind in ("syntax", "type", "base64", "time")


@given(JSONISH)
@example(b"[" * 10_001)
@example(b'{"payload":[null,65],"payload":[1]}')
@example(b"\xef\xbb\xbf{}")
def test_decode_any_bytes_gives_result_or_decode_error(data: bytes) -> None:
    result = decode_scheduled_task(data)
    assert _valid_kind(result.error)
    assert isinstance(result.task, ScheduledTask)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(st.dictionaries(KEYS, json_values, max_size=8))
def test_decode_any_json_object_gives_result_or_decode_error(obj: dict[str, object]) -> None:
    result = decode_scheduled_task(json.dumps(obj).encode())
    assert _valid_kind(result.error)
    assert result.error is None or result.error.kind != "syntax"


@st.composite
def go_times(draw: st.DrawFn) -> GoTime:
    # Offsets RFC 3339 can carry back: whole minutes, at most 99:59.
    offset = draw(st.integers(-(99 * 60 + 59), 99 * 60 + 59)) * 60
    local = draw(st.integers(LOCAL_MIN, LOCAL_MAX))
    nsec = draw(st.integers(0, NANOS_PER_SECOND - 1))
    return GoTime(unix_ns=(local - offset) * NANOS_PER_SECOND + nsec, offset_s=offset)


go_text = st.text(st.characters(exclude_categories=["Cs"]))
tasks = st.builds(
    ScheduledTask,
    name=go_text,
    schedule=go_text,
    queue=go_text,
    task_type=go_text,
    payload=st.none() | st.binary(),
    deadline_ns=INT64,
    max_tries=INT64,
    created_at=go_times(),
)


@given(tasks)
def test_encode_then_decode_gives_the_task_back(task: ScheduledTask) -> None:
    data = encode_scheduled_task(task)
    result = decode_scheduled_task(data)
    assert result.error is None
    assert result.task == task
    assert encode_scheduled_task(result.task) == data


@given(st.binary())
def test_invalid_utf8_comes_back_as_one_replacement_per_byte(raw: bytes) -> None:
    name = raw.decode("utf-8", "surrogateescape")
    task = ScheduledTask(name=name, schedule="", queue="", task_type="")
    decoded = decode_scheduled_task(encode_scheduled_task(task)).task
    expected = "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in name)
    assert decoded.name == expected


@given(json_values)
def test_go_json_marshal_is_json_for_the_same_value(value: object) -> None:
    # Every number is a float64 on the Go side, so read them all back as floats.
    assert json.loads(go_json_marshal(value), parse_int=float) == value


# -- the size check agrees with the records the scheduler builds (issue 9 item 10) -----------

_NS = st.integers(0, 10**9 - 1)


@given(
    st.binary(max_size=300) | st.none(),
    st.integers(0, 10**15),
    st.integers(0, 2**63 - 1),
    st.text(alphabet="abcXYZ019_:-", min_size=1, max_size=20),
    st.integers(0, 10**9),
    _NS,
)
def test_fire_publish_size_bounds_the_task_record_a_fire_stores(
    payload: bytes | None, deadline_ns: int, max_tries: int, task_type: str, second: int, created_ns: int
) -> None:
    schedule = ScheduledTask("S", "@every 1s", "Q", task_type, payload, deadline_ns, max_tries)
    instant = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    created = GoTime(int(instant.timestamp()) * 10**9 + created_ns)
    _task, body = fire_record(schedule, instant, created=created)
    sent = len(body) + header_block_size({EXPECTED_LAST_SUBJECT_SEQ: "0"})
    assert sent <= fire_publish_size(schedule)
    if created_ns % 10 and (deadline_ns == 0 or deadline_ns % 10):  # both times at nine digits
        assert sent == fire_publish_size(schedule)
# Plain records (scheduler loading, codec/schedule.py ``_decode_plain``): the fast path must
# decide exactly as the Go-exact decoder, on records near the edge of "plain" too.
EXACT_KEYS = st.sampled_from([*KEY_NAMES, "deadline", "schedule", "task_type"])
plain_values = (
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.sampled_from(["", "eA==", "eA", "x"])
    | st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456789+01:00", "2026-13-01T00:00:00Z"])
    | st.text(alphabet="abc *,/-:0123456789\u00e9\"\\\t", max_size=12) | st.lists(st.integers(0, 300), max_size=3)
)  # fmt: skip


@given(st.lists(st.tuples(EXACT_KEYS, plain_values), max_size=9), st.sampled_from([":", " :", ": "]))
@example([("name", "a"), ("name", None)], ":")
@example([("created_at", "bad"), ("created_at", "2026-01-02T03:04:05Z")], ":")
@example([("payload", "eA=="), ("payload", None)], ":")
def test_plain_decoding_agrees_with_go_decoder(pairs: list[tuple[str, object]], colon: str) -> None:
    data = ("{" + ",".join(f"{json.dumps(k)}{colon}{json.dumps(v)}" for k, v in pairs) + "}").encode()
    fast, exact = decode_scheduled_task(data), decode_go(data)
    assert (fast.task, fast.error and str(fast.error), fast.warnings) == (
        exact.task, exact.error and str(exact.error), exact.warnings
    )  # fmt: skip


@given(tasks)
def test_plain_decoding_agrees_on_every_encoded_task(task: ScheduledTask) -> None:
    data = encode_scheduled_task(task)
    assert decode_scheduled_task(data) == decode_go(data)


def edges(*values: int) -> st.SearchStrategy[str]:
    """Two-digit fields, mostly at the edges of their range."""
    return (st.sampled_from(values) | st.integers(0, 99)).map(lambda n: f"{n:02d}")


plain_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: f'"{y:04d}-{mo}-{d}T{h}:{mi}:{s}{frac}{zone}"'.encode(),
    st.sampled_from([0, 1900, 2000, 2023, 2024, 9999]) | st.integers(0, 9999),
    edges(0, 1, 2, 12, 13), edges(0, 1, 28, 29, 30, 31, 32), edges(0, 23, 24), edges(0, 59, 60), edges(0, 59, 60),
    st.sampled_from(["", "."]) | st.text("0123456789", min_size=1, max_size=11).map(lambda f: "." + f),
    st.sampled_from(["Z", "z", "+00:00", ""]),
)  # fmt: skip


@given(plain_times)
@example(b'"2024-02-29T23:59:59.999999999Z"')
@example(b'"2023-02-29T00:00:00Z"')
@example(b'"2024-01-01T00:00:60Z"')
@example(b'"2024-01-01T00:60:00Z"')
@example(b'"2024-01-01T24:00:00Z"')
@example(b'"2024-13-01T00:00:00Z"')
@example(b'"2024-04-30T00:00:00.1234567891Z"')
@example(b'"2024-04-31T00:00:00Z"')
def test_plain_utc_time_parses_as_go_does(token: bytes) -> None:
    # gotime.parse_json_time's fast path against Go 1.19's parse, on and off its edges.
    try:
        exact: GoTime | str = gotime_parse(JSON_LAYOUT, token)
    except GoTimeParseError as exc:
        exact = str(exc)
    try:
        fast: GoTime | str = parse_json_time(token)
    except GoTimeParseError as exc:
        fast = str(exc)
    assert fast == exact
