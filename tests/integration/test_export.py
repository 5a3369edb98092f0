"""export against a real nats-server: live records to manifests that plan as "no changes",
byte-exact payloads of every kind, and files only ever written inside --dir."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ajc_gitops import codec
from ajc_gitops.commands import common
from ajc_gitops.commands import export as export_command
from ajc_gitops.commands.options import ExportOptions
from ajc_gitops.connect import ConnectFlags, ConnectOptions
from ajc_gitops.errors import AjcError, ExportError
from ajc_gitops.manifest.export import export_schedules, render_stream
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.model import ScheduledTask
from ajc_gitops.plan.model import Action, NoticeKind
from ajc_gitops.state import Entry, Snapshot
from ajc_gitops.store import Store
from ajc_gitops.sync.apply import apply_plan
from ajc_gitops.sync.state import read_state

pytestmark = pytest.mark.integration

NOW = datetime(2026, 7, 22, tzinfo=UTC)


def record(name: str, payload: str | None, *, extra: str = "", schedule: str = "0 0 1 * *") -> bytes:
    """A record as Go writes it; ``payload`` is the JSON token (base64 string or null)."""
    token = "null" if payload is None else f'"{payload}"'
    return (
        f'{{"name":"{name}","schedule":"{schedule}","queue":"EMAIL","task_type":"email:monthly",'
        f'"payload":{token}{extra},"max_tries":10,"created_at":"2026-07-22T08:39:24.1234567Z"}}'
    ).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# Every payload shape a live record can hold, by how export has to write it.
RECORDS = {
    # `ajc task cron add --payload '{"a":1}'`: a JSON string (contract §2.2)
    "cli_json_string": record("cli_json_string", "IntcImFcIjoxfSI=", extra=',"deadline":43200000000000'),
    "cli_html_string": record("cli_html_string", b64(b'"\\u003cb\\u003e \\u0026"')),
    # HTTP API payload: Go re-marshalled JSON (sorted keys, normalised numbers)
    "http_json": record("http_json", b64(b'{"a":1,"b":[true,null,2.5],"c":{"d":"x"}}')),
    # JSON that Go would re-encode differently: must stay byte-exact, so base64
    "json_spaced": record("json_spaced", b64(b'{ "b": 1, "a": 2 }')),
    "json_bignum": record("json_bignum", b64(b"12345678901234567890123")),
    "raw_bytes": record("raw_bytes", b64(b"\x00\xff\xfebinary\n")),
    "empty_bytes": record("empty_bytes", ""),
    "nil_payload": record("nil_payload", None),
    "null_bytes": record("null_bytes", b64(b"null")),
    # Strings YAML 1.1 would misread if written plainly
    "yaml_traps": record("yaml_traps", b64(b'["yes","on","0x1F","1:20","2001-12-14","~","null","007","1e3"]')),
    "unicode": record("unicode", b64('{"msg":"grüße \u2028 ☃"}'.encode())),
    "berlin": record(
        "berlin", None, schedule="CRON_TZ=Europe/Berlin 0 9-17 * * mon-fri", extra=',"deadline":90000000000'
    ),
}


async def seed(url: str, records: dict[str, bytes]) -> None:
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=2)) as store:
        await store.ensure_buckets()
        for name, value in records.items():
            await store.put_raw(f"scheduled_tasks.{name}", value)


def flags(url: str) -> ConnectFlags:
    return ConnectFlags(server=url, timeout_s=2.0)


def plan_for(url: str, path: Path, adopt: frozenset[str] = frozenset()) -> Any:
    loaded = load_manifests([path], now=NOW)
    assert not loaded.errors, [str(p) for p in loaded.errors]

    async def go() -> Any:
        async with Store.open(ConnectOptions(servers=(url,), timeout_s=2)) as store:
            plan = await common.make_plan(store, loaded.schedules, now=NOW, prune=False, adopt=adopt)
            return plan, store

    return asyncio.run(go())[0]


def apply(url: str, plan: Any) -> Any:
    async def go() -> Any:
        async with Store.open(ConnectOptions(servers=(url,), timeout_s=2)) as store:
            return await apply_plan(store, plan)

    return asyncio.run(go())


def live_records(url: str) -> dict[str, bytes | None]:
    async def go() -> dict[str, bytes | None]:
        async with Store.open(ConnectOptions(servers=(url,), timeout_s=2)) as store:
            records, _ = await read_state(store)
            return {k: e.value for k, e in records.live.items()}

    return asyncio.run(go())


def test_export_then_plan_has_no_changes_for_every_payload_kind(nats_server, tmp_path, capsys):
    asyncio.run(seed(nats_server.url, RECORDS))
    out = tmp_path / "exported"
    assert export_command.run(ExportOptions((), flags(nats_server.url), out)) == 0
    err = capsys.readouterr().err
    assert "warning" not in err, err
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.yaml" for n in RECORDS)
    text = {n: (out / f"{n}.yaml").read_text() for n in RECORDS}
    assert "payload: '{\"a\":1}'" in text["cli_json_string"]
    assert "payload_base64:" in text["raw_bytes"] and "payload_base64:" in text["json_spaced"]
    assert "payload:" not in text["nil_payload"] and "payload_base64" not in text["nil_payload"]
    assert "deadline: 12h0m0s" in text["cli_json_string"] and "max_tries: 10" in text["nil_payload"]

    # Hand-made schedules: plan changes nothing and asks for --adopt, never for a write.
    plan = plan_for(nats_server.url, out)
    assert not plan.has_changes
    assert {n.name for n in plan.blocked} == set(RECORDS)
    assert {n.kind for n in plan.blocked} == {NoticeKind.UNMANAGED_CONFLICT}

    adopted = plan_for(nats_server.url, out, adopt=frozenset(RECORDS))
    assert {c.action for c in adopted.changes} == {Action.ADOPT}
    assert [c.name for c in adopted.changes if c.fields or c.value is not None] == []
    before = live_records(nats_server.url)
    assert apply(nats_server.url, adopted).complete
    assert live_records(nats_server.url) == before  # byte for byte: only markers were written
    final = plan_for(nats_server.url, out)
    assert not final.has_changes and not final.notices


def test_export_to_stdout_is_one_manifest_and_names_filter(nats_server, tmp_path, capsys):
    asyncio.run(seed(nats_server.url, {k: RECORDS[k] for k in ("raw_bytes", "http_json", "berlin")}))
    assert export_command.run(ExportOptions(("http_json", "berlin"), flags(nats_server.url), None)) == 0
    stdout = capsys.readouterr().out
    document = yaml.safe_load(stdout)
    assert [s["name"] for s in document["schedules"]] == ["berlin", "http_json"]
    assert '"CRON_TZ=Europe/Berlin 0 9-17 * * mon-fri"' in stdout
    path = tmp_path / "all.yaml"
    path.write_text(stdout)
    plan = plan_for(nats_server.url, path, adopt=frozenset({"http_json", "berlin"}))
    assert [c.name for c in plan.changes if c.fields or c.value is not None] == []
    with pytest.raises(AjcError, match="no live schedule named nope"):
        export_command.run(ExportOptions(("nope",), flags(nats_server.url), tmp_path / "x"))


def test_records_that_cannot_be_manifests_are_reported_not_dropped(nats_server, tmp_path, capsys):
    asyncio.run(
        seed(
            nats_server.url,
            {
                "ok": RECORDS["nil_payload"].replace(b"nil_payload", b"ok"),
                "broken": b'{"name":"broken",',
                "renamed": RECORDS["nil_payload"],
                "a=b": RECORDS["nil_payload"].replace(b"nil_payload", b"a=b"),
            },
        )
    )
    assert export_command.run(ExportOptions((), flags(nats_server.url), tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "scheduled_tasks.broken: not exported: Go cannot decode this record" in err
    assert "scheduled_tasks.renamed: not exported: its JSON name 'nil_payload' differs from the key" in err
    assert "scheduled_tasks.a=b: not exported: the key is not a schedule name" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ok.yaml"]


def test_export_never_follows_a_symlink_out_of_the_directory(nats_server, tmp_path):
    asyncio.run(seed(nats_server.url, {"nil_payload": RECORDS["nil_payload"]}))
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "nil_payload.yaml").symlink_to(outside)
    with pytest.raises(ExportError, match="symlink"):
        export_command.run(ExportOptions((), flags(nats_server.url), out))
    assert outside.read_text() == "precious"


# -- property: any payload round-trips (no server needed: export works on a snapshot) -------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_payloads = st.one_of(
    st.none(),
    st.binary(max_size=64),  # raw bytes
    _json_values.map(codec.go_json_marshal),  # what Go's HTTP API stores
    _json_values.map(lambda v: json.dumps(v).encode()),  # JSON Go would re-encode differently
    _json_values.map(lambda v: codec.go_json_marshal(json.dumps(v))),  # `ajc task cron add --payload`
)


@settings(max_examples=60, deadline=None)
@given(payload=_payloads, deadline_s=st.integers(min_value=0, max_value=10**6), max_tries=st.integers(1, 1000))
def test_any_live_record_exports_to_a_manifest_that_stores_the_same_record(payload, deadline_s, max_tries):
    deadline_ns = 0 if deadline_s < 30 else deadline_s * 1_000_000_000
    task = ScheduledTask("p", "@daily", "Q", "t", payload, deadline_ns, max_tries)
    value = codec.encode_scheduled_task(task)
    snapshot = Snapshot.build("scheduled_tasks.", [Entry("scheduled_tasks.p", value, 7, "PUT")])
    result = export_schedules(snapshot, now=NOW)
    assert result.warnings == () and result.skipped == ()
    [item] = result.schedules
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.yaml"
        path.write_text(render_stream(result))
        loaded = load_manifests([path], now=NOW)
    assert not loaded.problems
    [desired] = loaded.schedules
    assert desired.task == task  # created_at is the zero time on both sides
    assert ("payload" in item.entry) == (desired.payload_form.value == "json")


@pytest.mark.parametrize(
    ("deadline_ns", "max_tries", "field"), [(0, 0, "max_tries"), (90_400_000_000, 3, "deadline_ns")]
)
def test_a_record_no_go_writer_makes_exports_with_a_warning(deadline_ns: int, max_tries: int, field: str) -> None:
    """A manifest stores max_tries 0 as 10 and deadlines in whole seconds, as ajc task cron add
    does (docs/compatibility.md); a live record holding otherwise cannot round-trip, and says so."""
    value = codec.encode_scheduled_task(ScheduledTask("p", "@daily", "Q", "t", None, deadline_ns, max_tries))
    snapshot = Snapshot.build("scheduled_tasks.", [Entry("scheduled_tasks.p", value, 7, "PUT")])
    result = export_schedules(snapshot, now=NOW)
    assert result.warnings == (("scheduled_tasks.p", f"the manifest would store other {field} than the live record"),)
