"""Properties of the plan file: any bytes give a Plan or a PlanFileError, never another
exception; any plan computed from any store contents round-trips exactly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops import codec
from ajc_gitops.errors import PlanFileError
from ajc_gitops.manifest.load import PayloadForm
from ajc_gitops.plan.planfile import read_plan, write_plan
from tests.json_paths import json_paths, replaced
from tests.unit.plan_factories import marker, plan_for, record, task, want

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
NAMES = st.sampled_from(["A", "B", "C", "job-1", "x_y"])
SCHEDULES = st.sampled_from(["0 0 1 * *", "@every 90s", "CRON_TZ=Asia/Tokyo 30 8 * * mon-fri", "0 0 30 2 *"])
PAYLOADS = st.none() | st.binary(max_size=16) | JSON.map(codec.go_json_marshal)
LIVE_BYTES = st.binary(max_size=40) | st.sampled_from([b"{}", b'{"name":"A"}', b'{"Name":"B","MaxTries":3}'])


def _read(data: bytes) -> None:
    try:
        read_plan(data, "p.json")
    except PlanFileError as exc:
        assert str(exc).startswith("p.json: ") and "\n" not in str(exc)


@given(st.binary())
@example(b'{"kind":"ajc-gitops-plan","format_version":1}')
@example(b"\xef\xbb\xbf{}")
def test_any_bytes_give_a_plan_or_plan_file_error(data: bytes) -> None:
    _read(data)


@given(JSON)
def test_any_json_gives_a_plan_or_plan_file_error(value: object) -> None:
    _read(json.dumps(value).encode())


def _base_document() -> dict[str, Any]:
    live = {"A": record(task("A", queue="OLD")), "H": record(task("H"))}
    markers = {"A": marker("A", live["A"]), "O": marker("O", b"")}
    plan = plan_for([want(task("A")), want(task("N"))], live, markers, prune=True)
    document: dict[str, Any] = json.loads(write_plan(plan))
    return document


BASE = _base_document()


PATHS = json_paths(BASE)[1:]


@given(st.sampled_from(PATHS), JSON)
def test_a_damaged_plan_gives_a_plan_or_plan_file_error(path: tuple[object, ...], value: object) -> None:
    _read(json.dumps(replaced(BASE, path, value)).encode())


@given(
    st.lists(st.tuples(NAMES, SCHEDULES, PAYLOADS, st.booleans()), max_size=4, unique_by=lambda t: t[0]),
    st.dictionaries(NAMES, LIVE_BYTES | st.builds(lambda n: record(task(n)), NAMES), max_size=4),
    st.dictionaries(NAMES | st.sampled_from(["a.b", "bad:name"]), st.none() | st.binary(max_size=20), max_size=3),
    st.booleans(),
)
def test_every_computed_plan_round_trips(
    desired: list[tuple[str, str, bytes | None, bool]],
    live: dict[str, bytes],
    managed_names: dict[str, bytes | None],
    prune: bool,
) -> None:
    """Whatever the store holds (records and markers of any bytes), planning does not crash
    and the plan file gives the plan back."""
    wanted = [
        want(task(name, schedule=schedule, payload=payload), PayloadForm.BASE64 if raw and payload else None)
        for name, schedule, payload, raw in desired
    ]
    markers = {name: marker(name, live.get(name, b"")) if raw is None else raw for name, raw in managed_names.items()}
    plan = plan_for(wanted, live, markers, prune=prune, adopt=frozenset({"A"}))
    assert read_plan(write_plan(plan), "p.json") == plan
