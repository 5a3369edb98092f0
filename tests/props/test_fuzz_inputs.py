"""Bad input, fuzzed: every input ends in a result or a clear one-line error, never a traceback,
a hang or a write (issue 5 §2). Complements the per-module properties beside it
(test_codec_props, test_cron_props, test_planfile_props, test_connect_props) with:

* the manifest loader on arbitrary bytes and YAML-ish text written to a real file;
* `validate` end to end in-process: exit 0 or 1, stdout only problem lines and the summary;
* the record decoder as export and plan meet it (any store contents);
* the cron parser cross-checked on tests/data/cron_vectors.json with hypothesis start times
  and zones: next() strictly increasing, on second 0, a wall time that exists in the zone and
  matches the expression's fields there;
* context names and path-like context fields with `~`/`$VAR`;
* "never a write": an invalid or stale plan file given to `apply FILE` against a real
  nats-server leaves the bucket unchanged (its last sequence does not move).

Bounded by the suite's ``ci`` hypothesis profile (tests/conftest.py); the server-backed property
has its own smaller bound.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from ajc_gitops.cli.app import main
from ajc_gitops.connect import ConnectFlags, resolve_connect_options
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.errors import ConfigError, PlanFileError
from ajc_gitops.gowire.cron import EverySchedule, SpecSchedule, next_times, parse_standard
from ajc_gitops.manifest.export import export_schedules
from ajc_gitops.manifest.load import LoadResult, load_manifests
from ajc_gitops.plan.diff import compute_plan
from ajc_gitops.plan.planfile import read_plan
from ajc_gitops.state import Entry, Snapshot
from tests.json_paths import json_paths, replaced

NOW = datetime(2026, 11, 27, 7, 45, 22, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[1] / "data"

# -- the manifest loader ------------------------------------------------------------------------

TOKENS = st.sampled_from(
    ["schedules:", "defaults:", "- ", "  ", "    ", "name: ", "schedule: ", "queue: ", "task_type: ",
     "payload: ", "payload_base64: ", "deadline: ", "max_tries: ", "<<: ", "&a ", "*a", "!!binary ",
     "!foo ", "---", "...", "on", "yes", "~", "0x1F", "1:20", "2001-12-14", "'", '"', "{", "}", "[",
     "]", ",", ": ", "#", "\t", "\\n", "\\u2028", "\\x1d", "\r", "\ufeff", "\u2028", "\x85", "\x00",
     "@every 1s", "0 0 1 * *",
     "CRON_TZ=Europe/Berlin ", "TZ=UTC", "1e400", ".nan", "-.inf", "12h", "-1s", "%", "|", ">-", "?",
     "\\", "\u00e9", "\U0001f600"]
)  # fmt: skip
YAMLISH = st.lists(st.lists(TOKENS | st.text(max_size=4), max_size=8).map("".join), max_size=12).map("\n".join)
FIELD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
FIELDS = st.sampled_from(["name", "schedule", "queue", "task_type", "payload", "payload_base64", "deadline",
                          "max_tries", "x"])  # fmt: skip
MANIFESTS = st.fixed_dictionaries(
    {"schedules": st.lists(st.dictionaries(FIELDS, FIELD_VALUES, max_size=7), max_size=3)},
    optional={"defaults": st.dictionaries(FIELDS, FIELD_VALUES, max_size=3)},
).map(lambda d: yaml.safe_dump(d, allow_unicode=True))
ANY_MANIFEST = (
    st.binary(max_size=400) | YAMLISH.map(lambda t: t.encode("utf-8", "surrogatepass")) | MANIFESTS.map(str.encode)
)
_LOCATED = re.compile(r"^(?P<path>.+?)(:(?P<line>\d+):(?P<col>\d+))?: (error|warning): \S")


# One directory for the whole run, the file rewritten per example (thousands under `long`).
_FUZZ_DIR = Path(tempfile.mkdtemp(prefix="ajc-fuzz-"))
atexit.register(shutil.rmtree, _FUZZ_DIR, True)


def _load(data: bytes) -> tuple[Path, LoadResult]:
    path = _FUZZ_DIR / "m.yaml"
    path.write_bytes(data)
    return path, load_manifests([_FUZZ_DIR], now=NOW)


def _check_problem_line(text: str, path: Path) -> None:
    assert len(text.splitlines()) == 1, repr(text)  # also \r, \x85, \u2028...
    match = _LOCATED.match(text)
    assert match is not None and match["path"] == str(path), text


@given(ANY_MANIFEST)
@example(b"\xef\xbb\xbfschedules: []")
@example(b"schedules:\n- name: a\n  payload: \xe2\x80\xa8x")  # U+2028 in a value
@example("schedules:\n- {name: '\u2028', x: 1}".encode())
@example(b"a: &a [*a]")
@example(b"\x85")
@example(b'schedules:\n  - name: "\\x85"\n    unknown\x85: 1')
def test_any_manifest_gives_a_result_with_one_line_problems(data: bytes) -> None:
    path, result = _load(data)
    assert isinstance(result, LoadResult)
    for problem in result.problems:
        assert problem.location.path == str(path)
        assert problem.location.line >= 0 and problem.location.col >= 0
        _check_problem_line(str(problem), path)
    if not result.errors:
        assert all(s.location.path == str(path) for s in result.schedules)


@given(ANY_MANIFEST)
@example(b"schedules:\n- name: a\n  schedule: '\x85'\n  task_type: t")
@example(b'schedules:\n- name: a\n  schedule: "@\\n\\nx"\n  task_type: t')  # atheris: Go's text quotes the \n
@example(b'schedules:\n- name: a\n  schedule: "TZ=a\\u2028b 0 0 * * *"\n  task_type: t')
def test_validate_in_process_exits_0_or_1_with_well_formed_lines(data: bytes) -> None:
    # capsys cannot be used with @given (function-scoped); output.write goes to sys.stdout.
    import contextlib
    import io

    path, _ = _load(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["validate", str(path)])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    text = out.getvalue()
    assert code in (0, 1), (code, text, err.getvalue())
    assert "Traceback" not in text + err.getvalue() and not err.getvalue()
    lines = text.split("\n")
    assert lines[-1] == ""
    summary = lines[-2]
    assert re.fullmatch(r"(ok: .*|\d+ errors?, \d+ warnings? \(.*\))", summary), summary
    for line in lines[:-2]:
        _check_problem_line(line, path)
    assert (code == 0) == summary.startswith("ok: ")


# -- the record decoder as export and plan see it --------------------------------------------

RECORD_BYTES = st.binary(max_size=60) | st.builds(
    lambda obj: json.dumps(obj).encode(),
    st.dictionaries(
        st.sampled_from(["name", "Name", "schedule", "queue", "task_type", "payload", "deadline", "max_tries",
                         "MaxTries", "Deadline", "created_at"]),
        FIELD_VALUES,
        max_size=8,
    ),
)  # fmt: skip
KEYS = st.sampled_from(["a", "b", "x-y", "A_1", "a/b", "=", "9"])


@given(st.dictionaries(KEYS, RECORD_BYTES, max_size=5))
@example({"a": b'{"name":"a","schedule":"TZ=x","payload":"!!"}'})
def test_any_records_export_and_plan_without_raising(records: dict[str, bytes]) -> None:
    entries = [Entry(f"scheduled_tasks.{k}", v, i + 1, "PUT") for i, (k, v) in enumerate(records.items())]
    snapshot = Snapshot.build("scheduled_tasks.", entries)
    result = export_schedules(snapshot, now=NOW)
    assert len(result.schedules) + len(result.skipped) == len(records)
    for key, why in [*result.skipped, *result.warnings]:
        assert key in snapshot.live and len(why.splitlines()) == 1, why
    plan = compute_plan([], snapshot, Snapshot.build("ajc_gitops.managed.", []), now=NOW, server="s", prune=True)
    assert not plan.changes  # nothing is managed, so nothing is ever deleted
    assert {n.key for n in plan.notices} <= set(snapshot.live)


# -- cron: cross-check on the Go vectors ---------------------------------------------------------

_VECTORS = json.loads((DATA / "cron_vectors.json").read_text())["cases"]
VALID_EXPRS = sorted({c["expr"] for c in _VECTORS if c["valid"]})
ZONES = ["", "UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "America/Havana", "Asia/Kolkata",
         "Pacific/Chatham", "America/Santiago"]  # fmt: skip
STARTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC))


def _with_zone(expr: str, zone: str) -> str:
    if not zone or "TZ=" in expr or expr.startswith("@every"):
        return expr
    return f"CRON_TZ={zone} {expr}"


def _bit(field: int, value: int) -> bool:
    return bool(field >> value & 1)


def _matches(schedule: SpecSchedule, local: datetime) -> bool:
    """robfig's match: every field's bit is set, with its day rule (dom AND dow when either is a
    star, else dom OR dow); Go's weekday has Sunday = 0."""
    star = 1 << 63
    dom, dow = _bit(schedule.dom, local.day), _bit(schedule.dow, (local.weekday() + 1) % 7)
    day = (dom and dow) if (schedule.dom & star or schedule.dow & star) else (dom or dow)
    return (
        day
        and _bit(schedule.minute, local.minute)
        and _bit(schedule.hour, local.hour)
        and _bit(schedule.month, local.month)
    )


@given(st.sampled_from(VALID_EXPRS), st.sampled_from(ZONES), STARTS)
@example("0 0,12 1 */2 *", "America/Santiago", datetime(2012, 5, 2, tzinfo=UTC))  # 2012-09-02: DST at 00:00
def test_vector_expressions_fire_forward_on_existing_matching_wall_times(expr: str, zone: str, start: datetime) -> None:
    schedule = parse_standard(_with_zone(expr, zone))
    times = next_times(schedule, start, 5)
    previous = start
    for fire in times:
        assert fire > previous, (fire, previous)  # strictly increasing
        previous = fire
        if isinstance(schedule, EverySchedule):
            continue
        assert fire.second == 0 and fire.microsecond == 0
        local = fire.astimezone(schedule.location)
        # The wall time exists in the zone: it converts back to the same instant.
        back = local.replace(tzinfo=None).replace(tzinfo=schedule.location, fold=local.fold)
        assert back.astimezone(UTC) == fire, (fire, local)
        assert _matches(schedule, local) or _dst_shifted(schedule, local), (expr, zone, fire, local)


# robfig walks from the start towards the fire; a field can go unchecked only when a step of that
# walk crossed an offset change. The walk reaches the fire's day at its midnight at the latest,
# so the crossing lies within the day before the fire, or just after when the day loop steps back
# from a midnight DST swallowed (scheduler docs, cron/schedule.py).
_TRANSITION_BEFORE = timedelta(hours=26)
_TRANSITION_AFTER = timedelta(hours=1)
_OFFSET_STEP = timedelta(minutes=15)  # every offset change in tzdata falls on a quarter hour


def _offset_changes(zone: ZoneInfo, instant: datetime) -> list[tuple[datetime, timedelta]]:
    """(instant, new offset - old offset) of every offset change of ``zone`` near ``instant``
    (a DST start or end, or a change of standard time), found by sampling the zone's offset."""
    changes = []
    at = instant.astimezone(UTC) - _TRANSITION_BEFORE
    offset = at.astimezone(zone).utcoffset()
    while at < instant + _TRANSITION_AFTER:
        at += _OFFSET_STEP
        now = at.astimezone(zone).utcoffset()
        if now != offset and now is not None and offset is not None:
            changes.append((at, now - offset))
        offset = now
    return changes


def _dst_shifted(schedule: SpecSchedule, local: datetime) -> bool:
    """robfig walks wall-clock hours and days and does not re-check every field after an offset
    change, so around one a fire can land off the wall time it names, as Go's does (the Go
    vectors for America/Havana and America/Santiago show such days). Accepted only when the
    schedule's own zone changed its offset near the fire (``_offset_changes``): a match that
    far away (the change's size: an hour, on Lord Howe 30 minutes), or the same time of day a
    day later (DST starting at midnight swallows the day's 00:00, and the hour loop runs on
    into the next day without re-checking it). Anywhere else a fire must match exactly."""
    zone = schedule.location
    if not isinstance(zone, ZoneInfo):
        return False
    changes = _offset_changes(zone, local)
    for _, delta in changes:
        for candidate in (local - abs(delta), local + abs(delta)):
            if _matches(schedule, candidate):
                return True
    if any(at <= local for at, _ in changes):
        return _matches(schedule, local.replace(tzinfo=None) - timedelta(days=1))
    return False


@pytest.mark.parametrize(
    ("expr", "local", "accepted"),
    [
        # Go's own off-by-a-day fire: 00:00 of 2012-09-02 was swallowed by DST 12 hours before.
        ("CRON_TZ=America/Santiago 0 0,12 1 */2 *", (2012, 9, 2, 12, 0), True),
        # The same wall time a month before, with no offset change near it, is a wrong fire.
        ("CRON_TZ=America/Santiago 0 0,12 1 */2 *", (2012, 8, 2, 12, 0), False),
        # An hour (Lord Howe: 30 minutes) away from a match on a day without a transition.
        ("CRON_TZ=America/New_York 30 2 * * *", (2021, 7, 14, 3, 30), False),
        ("CRON_TZ=America/New_York 30 2 * * *", (2021, 7, 14, 1, 30), False),
        ("CRON_TZ=Australia/Lord_Howe 15 2 * * *", (2021, 7, 14, 2, 45), False),
        # The same shifts on the morning of the zone's DST start are what robfig may do.
        ("CRON_TZ=America/New_York 30 2 * * *", (2021, 3, 14, 3, 30), True),
        ("CRON_TZ=Australia/Lord_Howe 15 2 * * *", (2021, 10, 3, 2, 45), True),
        # A transition in another zone does not excuse this one (Berlin is on summer time).
        ("CRON_TZ=Europe/Berlin 30 2 * * *", (2021, 3, 14, 3, 30), False),
    ],
)
def test_a_dst_shift_is_accepted_only_near_the_zones_own_transition(
    expr: str, local: tuple[int, ...], accepted: bool
) -> None:
    schedule = parse_standard(expr)
    assert isinstance(schedule, SpecSchedule)
    fire = datetime(*local, tzinfo=schedule.location)
    assert not _matches(schedule, fire)
    assert _dst_shifted(schedule, fire) is accepted


# -- NATS context files ----------------------------------------------------------------------------

PATHISH = st.lists(st.sampled_from(["~", "~/", "$HOME", "${HOME}", "$X", "${X", "$", "/", "..", "a", " ", "\x00",
                                    "\u00e9", "$1"]), max_size=5).map("".join)  # fmt: skip


@given(
    st.text(min_size=1, max_size=12)
    | st.sampled_from(["../x", "..", ".hidden", "a/b", "prod\n", "/etc/passwd", "a\x00"])
)
@example("prod\n")
def test_a_context_name_never_leaves_the_context_directory(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "nats" / "context").mkdir(parents=True)
        try:
            resolve_connect_options(ConnectFlags(context=name), {}, base)
        except ConfigError as exc:
            assert len(str(exc).splitlines()) == 1, str(exc)
            if "does not exist" in str(exc):
                # Only a plain file name inside nats/context was looked up.
                assert re.fullmatch(r"[A-Za-z0-9_.@-]+", name) and not name.startswith("."), name
        else:  # pragma: no cover (no context file exists)
            pytest.fail(f"context {name!r} resolved without a file")


@given(st.dictionaries(st.sampled_from(["creds", "nkey", "cert", "key", "ca", "url"]), PATHISH, min_size=1),
       st.dictionaries(st.sampled_from(["HOME", "X"]), st.text(max_size=8)))  # fmt: skip
def test_path_like_context_fields_expand_or_fail_in_one_line(fields: dict[str, str], env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "nats" / "context").mkdir(parents=True)
        (base / "nats" / "context" / "p.json").write_text(json.dumps(fields))
        try:
            options = resolve_connect_options(ConnectFlags(context="p"), env, base)
        except ConfigError as exc:
            assert len(str(exc).splitlines()) == 1, str(exc)
            return
    # Unset variables stay as written (the file check at connect names the path then).
    for path in (options.creds, options.nkey, options.tls_cert, options.tls_key, options.tls_ca):
        assert path is None or (isinstance(path, Path) and str(path))
    assert options.servers


# -- "never a write": invalid or stale plan files against a real server ---------------------------


@pytest.fixture
def saved_plan(nats_server: EmbeddedServer, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    from tests.faults.support import manifest_text, run_cli, write_manifest

    base = write_manifest(tmp_path / "base", manifest_text(4, variant="base"))
    assert run_cli("apply", str(base), "-s", nats_server.url, "--auto-approve").code == 0
    changed = write_manifest(tmp_path / "changed", manifest_text(6, variant="new"))
    planfile = tmp_path / "plan.json"
    assert run_cli("plan", str(changed), "-s", nats_server.url, "--out", str(planfile), "--prune").code == 0
    return nats_server.url, json.loads(planfile.read_text())


@pytest.mark.integration
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_an_invalid_plan_file_never_writes(
    saved_plan: tuple[str, dict[str, Any]], nats_server: EmbeddedServer, data: st.DataObject
) -> None:
    import contextlib
    import io

    from tests.faults.support import stream_last_seq

    url, document = saved_plan
    raw = json.dumps(document).encode()
    how = data.draw(st.sampled_from(["value", "truncate", "flip", "revision"]))
    if how == "value":
        path = data.draw(st.sampled_from(json_paths(document)[1:]))
        mutated = json.dumps(replaced(document, path, data.draw(FIELD_VALUES))).encode()
    elif how == "truncate":
        mutated = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(raw) - 1))
        mutated = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    else:  # a well-formed plan whose revisions no longer match the store: stale
        doc = json.loads(raw)
        change = data.draw(st.sampled_from([c for c in doc["changes"] if c["record_revision"]]))
        change["record_revision"] += data.draw(st.integers(1, 1000))
        mutated = json.dumps(doc).encode()
    try:
        read_plan(mutated, "p")
        valid = True
    except PlanFileError:
        valid = False
    assume(not valid or how == "revision")
    with tempfile.NamedTemporaryFile(suffix=".plan") as handle:
        handle.write(mutated)
        handle.flush()
        before = stream_last_seq(nats_server)
        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as exit_info,
        ):
            main(["apply", handle.name, "-s", url])
        assert exit_info.value.code == 1, (out.getvalue(), err.getvalue())
        [line] = err.getvalue().splitlines()
        assert line.startswith("error: ") and ("the plan is stale" in line or handle.name in line), line
        assert stream_last_seq(nats_server) == before  # never a write
