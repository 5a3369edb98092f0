"""The saved plan file: exact round trip, and one clear PlanFileError for anything else."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from ajc_gitops.errors import AjcError, PlanFileError
from ajc_gitops.gowire.gotime import parse_json_time
from ajc_gitops.model import GoTime
from ajc_gitops.plan.model import Action, Plan
from ajc_gitops.plan.planfile import KIND, read_plan, write_plan
from tests.unit.plan_factories import managed, marker, plan_for, record, suspended, task, want


def rich_plan() -> Plan:
    """Every action and notice kind, fires with a zone, drift, an undecodable live record."""
    live, markers = managed(task("UPD", queue="OLD"), task("SAME"), task("GONE"))
    live["ADOPTME"] = record(task("ADOPTME", max_tries=1))
    live["HAND"] = record(task("HAND"))
    live["CONFLICT"] = record(task("CONFLICT"))
    live["BAD"] = b'{"name":'
    live["x.y"] = b"{}"
    markers["BAD"] = marker("BAD", b"old")
    markers["ORPHAN"] = marker("ORPHAN", b"x")
    live["PAUSE"], markers["PAUSE"] = record(task("PAUSE")), marker("PAUSE", record(task("PAUSE")))
    markers["WAKE"] = suspended(task("WAKE"), "migration")
    desired = [
        want(task("PAUSE"), suspend=True, reason="migration, until Monday"),
        want(task("WAKE", max_tries=3)),
        want(task("NEW", schedule="CRON_TZ=Europe/Berlin 0 9 * * *", payload=b'{"a":[1,2.5,true]}')),
        want(task("UPD")),
        want(task("SAME")),
        want(task("ADOPTME")),
        want(task("CONFLICT", queue="X")),
        want(task("BAD")),
    ]
    return plan_for(
        desired,
        live,
        markers,
        dead={"NEW": 9, "WAKE": 77},
        prune=True,
        adopt=frozenset({"ADOPTME"}),
        queues=frozenset(),
    )


def test_round_trip_is_exact():
    plan = rich_plan()
    assert {c.action for c in plan.changes} == set(Action)
    assert [w.queue for w in plan.warnings] == ["EMAIL"]
    data = write_plan(plan)
    assert read_plan(data, "plan.json") == plan
    document = json.loads(data)
    assert document["format_version"] == 1 and document["kind"] == KIND
    assert write_plan(read_plan(data, "plan.json")) == data


def test_each_change_carries_revisions_and_exact_bytes():
    plan = rich_plan()
    document = json.loads(write_plan(plan))
    by_name = {c["name"]: c for c in document["changes"]}
    assert by_name["NEW"]["tombstone_revision"] == 9
    upd = next(c for c in plan.changes if c.name == "UPD")
    assert by_name["UPD"]["record_revision"] == upd.record_revision
    assert base64.b64decode(by_name["UPD"]["value"]) == upd.value
    assert base64.b64decode(by_name["UPD"]["marker_value"]) == upd.marker_value


def test_live_created_at_go_cannot_write_back_is_saved_as_utc():
    odd = parse_json_time(b'"2020-01-01T00:00:00+99:99"')  # Go reads it, but writes "+100:39"
    assert odd.offset_s == 99 * 3600 + 99 * 60
    plan = plan_for([want(task("A"))], *managed(task("A", queue="Q")))
    live = plan.changes[0].live
    assert live is not None
    change = replace(plan.changes[0], live=replace(live, created_at=odd))
    back = read_plan(write_plan(replace(plan, changes=(change,))), "p")
    assert back.changes[0].live is not None
    assert back.changes[0].live.created_at == GoTime(odd.unix_ns)


def _doc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(write_plan(rich_plan()))
    return document


def _change(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["changes"] if c["name"] == name)


def _set(name: str, key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        _change(doc, name)[key] = value

    return edit


B64 = base64.b64encode
BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("kind", lambda d: d.update(kind="terraform-plan"), "not an ajc-gitops plan file"),
    ("version", lambda d: d.update(format_version=2), "format_version 2 unsupported"),
    ("version-bool", lambda d: d.update(format_version=True), "format_version true unsupported"),
    ("unknown-key", lambda d: d.update(extra=1), "unknown key 'extra'"),
    ("missing-key", lambda d: d.pop("notices"), "missing key 'notices'"),
    ("prune-type", lambda d: d.update(prune="yes"), 'prune: expected true or false, got "yes"'),
    ("bucket", lambda d: d.update(bucket="A.B"), "bucket: not a KV bucket name"),
    ("changes-type", lambda d: d.update(changes={}), "changes: expected a list"),
    ("action", _set("UPD", "action", "replace"), "action: unknown action 'replace'"),
    ("name", _set("UPD", "name", "a.b"), "contains '.'"),
    ("revision-bool", _set("UPD", "record_revision", True), "record_revision: expected a revision"),
    ("revision-zero", _set("UPD", "record_revision", 0), "record_revision: expected a revision"),
    ("revision-str", _set("UPD", "marker_revision", "7"), "marker_revision: expected a revision"),
    ("base64", _set("UPD", "value", "!!!"), "value: not standard padded base64"),
    ("value-not-record", _set("UPD", "value", B64(b"{").decode()), "value: not a record Go can decode"),
    ("value-other-name", _set("UPD", "value", B64(record(task("ZZZ"))).decode()), "record names 'ZZZ', not 'UPD'"),
    ("value-other-fields", _set("UPD", "value", B64(record(task("UPD", queue="Q9"))).decode()), "differs from"),
    ("marker-name", _set("UPD", "marker_value", B64(marker("ZZZ", b"x")).decode()), "marker names 'ZZZ'"),
    ("marker-junk", _set("UPD", "marker_value", B64(b"[]").decode()), "marker_value: marker is not a JSON object"),
    ("create-no-value", _set("NEW", "value", None), "create changes need value"),
    ("delete-with-value", _set("GONE", "value", B64(record(task("GONE"))).decode()), "must not have value"),
    ("update-no-revision", _set("UPD", "record_revision", None), "update changes need record_revision"),
    ("fields", _set("UPD", "fields", [{"field": 1, "before": None, "after": None}]), "fields[0].field"),
    ("fires", _set("NEW", "fires", {"utc": "x", "zone": None, "local": []}), "fires.utc: expected a list"),
    ("duplicate-change", lambda d: d["changes"].append(d["changes"][0]), "appears more than once"),
    ("notice-kind", lambda d: d["notices"][0].update(kind="oops"), "unknown notice kind 'oops'"),
    ("notice-key", lambda d: d["notices"][0].update(key="a b"), "not a schedule or marker key"),
]


@pytest.mark.parametrize(("edit", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_damaged_plan_is_one_clear_error(edit: Callable[[dict[str, Any]], None], expected: str):
    doc = _doc()
    edit(doc)
    with pytest.raises(PlanFileError) as info:
        read_plan(json.dumps(doc).encode(), "plan.json")
    message = str(info.value)
    assert message.startswith("plan.json: ") and "\n" not in message
    assert expected in message, message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"", "invalid JSON: Expecting value at line 1 column 1"),
        (b"[" * 100_000, "invalid JSON"),
        (b"[]", "not an ajc-gitops plan file"),
        (b'{"kind":"ajc-gitops-plan","kind":"x"}', "duplicate key 'kind'"),
        (b'{"a":NaN}', "NaN is not JSON"),
        (b'{"n":' + b"9" * 5000 + b"}", "invalid JSON"),
    ],
    ids=["binary", "empty", "deep", "list", "duplicate-key", "nan", "huge-int"],
)
def test_non_plan_bytes_are_one_clear_error(data: bytes, expected: str):
    with pytest.raises(PlanFileError, match=r"^p\.json: ") as info:
        read_plan(data, "p.json")
    assert expected in str(info.value)


def test_plan_file_error_is_an_ajc_error():
    assert issubclass(PlanFileError, AjcError)


def test_the_sensitive_flag_round_trips_and_an_older_file_without_it_reads_as_false():
    t = task("S", payload=b'{"token":"x"}')
    plan = plan_for([want(t, sensitive=True), want(task("P"))])
    data = write_plan(plan)
    assert read_plan(data, "plan.json") == plan
    assert [c.sensitive for c in read_plan(data, "plan.json").changes] == [False, True]
    document = json.loads(data)
    for change in document["changes"]:
        del change["sensitive"]
    older = read_plan(json.dumps(document).encode(), "plan.json")
    assert [c.sensitive for c in older.changes] == [False, False]
    document["changes"][0]["sensitive"] = "yes"
    with pytest.raises(PlanFileError, match=r"changes\[0\].sensitive: expected true or false"):
        read_plan(json.dumps(document).encode(), "plan.json")
