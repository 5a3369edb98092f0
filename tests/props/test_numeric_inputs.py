"""Numbers no field can hold, in every reader (issue 9 item 7): integers past Python's
4,300-digit ``int()`` limit (decimal, or hex/octal/binary/sexagesimal literals that parse
without it and fail when printed), floats past float64, explicit YAML tags on text that is no
number, and nesting past the interpreter's recursion limit. Each reader answers with its own
one-line error or a result, never another exception.

Readers: the manifest loader (and ``validate`` end to end), the schedule record decoder (live
KV records, plan-file records), the saved plan file, the NATS context file, and the store-byte
decoders the scheduler and ``dev`` run on whatever a bucket or stream holds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops import codec
from ajc_gitops.cli.app import main
from ajc_gitops.codec import decode_member, decode_task_event, decode_task_progress
from ajc_gitops.connect import ConnectFlags, resolve_connect_options
from ajc_gitops.errors import ConfigError, PlanFileError
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.plan.planfile import read_plan
from tests.json_paths import json_paths
from tests.props.test_connect_props import resolve_bytes
from tests.props.test_fuzz_inputs import _FUZZ_DIR, NOW, _check_problem_line
from tests.props.test_planfile_props import BASE

_LIMIT = 4300  # sys.get_int_max_str_digits() default
DIGITS = st.integers(_LIMIT - 2, _LIMIT + 2000).map(lambda n: "9" * n)
HUGE_INT_TEXT = st.one_of(
    DIGITS,
    DIGITS.map(lambda d: "-" + d),
    st.integers(4000, 6000).map(lambda n: "0x" + "f" * n),  # 4 bits a digit: past 4,300 decimal digits
    st.integers(5000, 7000).map(lambda n: "0" + "7" * n),  # YAML 1.1 octal
    st.integers(15000, 20000).map(lambda n: "0b" + "1" * n),
    st.integers(2000, 3000).map(lambda n: "1" + ":59" * n),  # YAML 1.1 base 60
    st.integers(_LIMIT, 5000).map(lambda n: "1_" + "0" * n),
    st.integers(310, 400).map(lambda n: "1" + "0" * n),  # an int past float64, within int()
)
# Spelled as YAML 1.1 floats (a dot, a signed exponent): PyYAML reads "1e400" as a string.
HUGE_FLOAT_TEXT = st.one_of(
    DIGITS.map(lambda d: d + ".5"),
    st.integers(309, 10**9).map(lambda e: f"1.0e+{e}"),
    st.integers(309, 10**9).map(lambda e: f"-1.5e+{e}"),
)
NUMBER_TEXT = HUGE_INT_TEXT | HUGE_FLOAT_TEXT
# Tagged text that is no value of the tag: PyYAML's constructors raise ValueError or KeyError.
TAGGED = st.sampled_from(["!!int abc", "!!int 0x", "!!float abc", "!!bool maybe", "!!int ''", "!!float 1e"])
YAML_VALUES = NUMBER_TEXT | TAGGED | NUMBER_TEXT.map(lambda t: f"[{t}]") | NUMBER_TEXT.map(lambda t: f"{{n: {t}}}")

# -- the manifest -----------------------------------------------------------------------------

FIELDS = st.sampled_from(
    ["name", "schedule", "queue", "task_type", "payload", "payload_base64", "deadline", "max_tries",
     "payload_sensitive", "unknown"]
)  # fmt: skip
_LOCATED = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): error: \S")


def _manifest(field: str, value: str, in_defaults: bool) -> tuple[str, int]:
    """The manifest text, and the line the value is on."""
    if in_defaults:
        head = f"defaults:\n  {field}: {value}\n"
        return head + "schedules:\n  - name: nightly\n    schedule: '@daily'\n    task_type: t\n", 2
    lines = ["schedules:", "  - name: nightly", "    schedule: '@daily'", "    task_type: t"]
    lines = [ln for ln in lines if not ln.strip().startswith(f"{field}:") and not ln.strip().startswith(f"- {field}:")]
    if field == "name":
        lines[1] = "  - schedule: '@daily'"
        lines[2] = "    task_type: t"
        lines = lines[:3]
    lines.append(f"    {field}: {value}")
    return "\n".join(lines) + "\n", len(lines)


def _validate(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", str(path)])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@given(FIELDS, YAML_VALUES, st.booleans())
@example("max_tries", "9" * 5000, False)  # the input
@example("max_tries", "9" * 5000, True)
@example("payload", "{n: " + "9" * 400 + "}", False)  # past float64: Go's Unmarshal refuses it
@example("payload", "{n: 0x" + "f" * 5000 + "}", False)
@example("deadline", "9" * 5000, False)
@example("max_tries", "0x" + "f" * 5000, False)
@example("payload_sensitive", "!!bool maybe", False)
@example("name", "!!int ''", False)  # PyYAML's int constructor raises IndexError on empty text
def test_a_number_no_field_holds_is_a_located_error(field: str, value: str, in_defaults: bool) -> None:
    if in_defaults and field not in ("queue", "task_type", "deadline", "max_tries", "payload_sensitive"):
        in_defaults = False
    text, line = _manifest(field, value, in_defaults)
    path = _FUZZ_DIR / "numbers.yaml"
    path.write_text(text)
    code, out, err = _validate(path)
    assert code == 1 and not err, (code, out[:300], err[:300])
    problems = out.split("\n")[:-2]
    for problem in problems:
        _check_problem_line(problem, path)
    lines = {int(m["line"]) for p in problems if (m := _LOCATED.match(p))}
    assert line in lines, (line, [p[:120] for p in problems])
    assert "set_int_max_str_digits" not in out


def test_load_keeps_going_after_a_huge_number() -> None:
    path = _FUZZ_DIR / "numbers.yaml"
    path.write_text(
        "schedules:\n  - name: a\n    schedule: '@daily'\n    task_type: t\n    max_tries: " + "9" * 5000 + "\n"
        "  - name: b\n    schedule: '@dailyy'\n    task_type: t\n"
    )
    result = load_manifests([path], now=NOW)
    assert [(p.location.line, p.location.col) for p in result.errors] == [(5, 16), (7, 15)]
    assert "larger than any field holds" in result.errors[0].message and len(result.errors[0].message) < 300


# -- the schedule record decoder ---------------------------------------------------------------

JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
RECORD_NUMBER = NUMBER_TEXT.filter(lambda t: JSON_NUMBER.fullmatch(t) is not None)


@given(st.sampled_from(["max_tries", "deadline", "MaxTries", "created_at", "payload"]), RECORD_NUMBER, st.booleans())
@example("max_tries", "9" * 5000, False)
@example("payload", "9" * 5000, True)
def test_a_record_with_a_huge_number_is_a_decode_error(field: str, number: str, in_array: bool) -> None:
    value = f"[{number}]" if in_array else number
    data = f'{{"name":"a","schedule":"@daily","queue":"q","task_type":"t","{field}":{value}}}'.encode()
    try:
        codec.decode_or_raise(data)
    except codec.DecodeError as exc:
        assert "\n" not in str(exc)


# -- the plan file -----------------------------------------------------------------------------

PLAN_PATHS = json_paths(BASE)[1:]


def _with_number(path: tuple[object, ...], number: str) -> bytes:
    marker = "\x00NUMBER\x00"
    copy = json.loads(json.dumps(BASE))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = marker
    return json.dumps(copy).replace(json.dumps(marker), number).encode()


@given(st.sampled_from(PLAN_PATHS), RECORD_NUMBER)
@example(("changes", 0, "record_revision"), "9" * 5000)
@example(("changes", 0, "record_revision"), str(2**64))
@example(("format_version",), "1e99999")
def test_a_plan_file_with_a_huge_number_is_a_plan_file_error(path: tuple[object, ...], number: str) -> None:
    try:
        read_plan(_with_number(path, number), "p.json")
    except PlanFileError as exc:
        assert str(exc).startswith("p.json: ") and "\n" not in str(exc)
        assert "set_int_max_str_digits" not in str(exc)


def test_a_revision_past_uint64_is_refused() -> None:
    # NATS sequences are uint64: no store holds this revision, so the plan is not one of ours.
    data = _with_number(("changes", 0, "record_revision"), str(2**64))
    try:
        read_plan(data, "p.json")
    except PlanFileError as exc:
        assert "changes[0].record_revision" in str(exc)
    else:
        raise AssertionError("a revision past uint64 was accepted")


@given(st.integers(1000, 200_000))
def test_a_deeply_nested_plan_file_is_a_plan_file_error(depth: int) -> None:
    for data in (b"[" * depth, b'{"a":' * depth, b"[" * depth + b"]" * depth):
        try:
            read_plan(data, "p.json")
        except PlanFileError as exc:
            assert "\n" not in str(exc)


# -- the NATS context file ---------------------------------------------------------------------


@given(
    st.sampled_from(["url", "user", "password", "token", "tls_first", "other"]),
    RECORD_NUMBER,
)
@example("tls_first", "9" * 5000)
def test_a_context_with_a_huge_number_is_a_config_error(field: str, number: str) -> None:
    raw = f'{{"url": "nats://h:4222", "{field}": {number}}}'.encode()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp) / "nats" / "context"
        ctx.mkdir(parents=True)
        (ctx / "p.json").write_bytes(raw)
        try:
            resolve_connect_options(ConnectFlags(context="p"), {}, Path(tmp))
        except ConfigError as exc:
            assert "p.json" in str(exc) and "\n" not in str(exc)
            assert "set_int_max_str_digits" not in str(exc)  # said in words, not Python's


@given(st.integers(1000, 200_000))
def test_a_deeply_nested_context_is_a_config_error(depth: int) -> None:
    resolve_bytes(b'{"url": ' + b"[" * depth)
    resolve_bytes(b"[" * depth + b"]" * depth)


# -- bytes the scheduler and dev read from the store -------------------------------------------


@given(st.integers(1000, 200_000), RECORD_NUMBER)
def test_store_bytes_with_deep_nesting_or_huge_numbers_decode_or_are_refused(depth: int, number: str) -> None:
    for data in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth, number.encode(),
                 f'{{"started_ns": {number}, "tries": {number}, "state": "new"}}'.encode()):  # fmt: skip
        decode_member("ajc_gitops_member.x", data)
        decode_task_progress(data)
        decode_task_event(data)
