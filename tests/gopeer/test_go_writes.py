"""Go writes, we read: schedules made by the real ``ajc task cron add`` are read by plan,
export and apply exactly as Go wrote them (issue #10, item 2)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ajc_gitops import codec
from ajc_gitops.embedded import EmbeddedServer
from tests.faults.support import read_live, run_cli
from tests.gopeer.peer import Ajc, cron_fields

pytestmark = pytest.mark.integration


FULL_ARGS = ["--queue", "GW_EMAIL", "--deadline", "12h", "--tries", "3", "--payload", '{"a":1}']

# name -> (ajc task cron add arguments after NAME, what Go stores for them). Every form the
# CLI takes: payload (a JSON string, as the CLI stores it), --deadline, --tries, --queue,
# CRON_TZ=, and the bare words the CLI prefixes with "@" (it cannot take "@hourly" itself: its
# flag parser reads an argument starting with "@" as a file of arguments).
ADDS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "GW_FULL": (
        ["0 0 1 * *", "email:monthly", *FULL_ARGS],
        cron_fields("0 0 1 * *", "email:monthly", "GW_EMAIL", 43200, 3, b'"{\\"a\\":1}"'),
    ),
    "GW_TZ": (
        ["CRON_TZ=Europe/Berlin 30 9 * * mon-fri", "report:daily"],
        cron_fields("CRON_TZ=Europe/Berlin 30 9 * * mon-fri", "report:daily"),
    ),
    "GW_MONTHLY": (["monthly", "bill:run", "--deadline", "90s"], cron_fields("@monthly", "bill:run", deadline_s=90)),
    "GW_EVERY": (
        ["every 10m", "tick", "--payload", "plain <text> & more", "--tries", "1"],
        cron_fields("@every 10m", "tick", max_tries=1, payload=b'"plain \\u003ctext\\u003e \\u0026 more"'),
    ),
    "GW_DESCRIPTOR": (["hourly", "ping", "-q", "GW_OPS"], cron_fields("@hourly", "ping", "GW_OPS")),
}


@pytest.fixture(scope="module")
def go_made(ajc: Ajc, go_server: EmbeddedServer) -> dict[str, dict[str, Any]]:
    """Every ADDS schedule created once by the Go CLI; name -> ``ajc task cron view --json``."""
    for name, (args, _) in ADDS.items():
        ajc.run("task", "cron", "add", name, *args)
    return {name: ajc.json("task", "cron", "view", name, "--json") for name in ADDS}


def go_fields(view: dict[str, Any]) -> dict[str, Any]:
    """The fields of Go's JSON view, in the ADDS form."""
    payload = view.get("payload")
    return {
        "schedule": view["schedule"],
        "queue": view["queue"],
        "task_type": view["task_type"],
        "deadline_s": view.get("deadline", 0) // 10**9,
        "max_tries": view["max_tries"],
        "payload": None if payload is None else base64.b64decode(payload),
    }


def plan_json(url: str, *args: str, code: int = 0) -> dict[str, Any]:
    done = run_cli("plan", *args, "--server", url, "--format", "json")
    assert done.code == code, done.stderr
    return json.loads(done.stdout)


def test_go_stores_what_the_contract_says(go_made: dict[str, dict[str, Any]]) -> None:
    """The oracle the other tests lean on: Go's own view of what it stored."""
    for name, (_, expected) in ADDS.items():
        assert go_fields(go_made[name]) == expected, name


def test_go_schedules_plan_as_hand_made_and_decode_to_gos_fields(
    go_made: dict[str, dict[str, Any]], go_server: EmbeddedServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    plan = plan_json(go_server.url, str(empty))
    unmanaged = {n["name"] for n in plan["notices"] if n["kind"] == "unmanaged"}
    assert set(ADDS) <= unmanaged
    assert not [c for c in plan["changes"] if c["name"] in ADDS]
    assert not plan["summary"]["has_changes"]

    # What plan decodes from each record (the read every command shares) is Go's view.
    import asyncio

    state = asyncio.run(read_live(go_server.url))
    live, raw = state.tasks(), state.records
    for name in ADDS:
        task, view = live[name], go_made[name]
        ours = {
            "schedule": task.schedule,
            "queue": task.queue,
            "task_type": task.task_type,
            "deadline_s": (task.deadline_ns or 0) // 10**9,
            "max_tries": task.max_tries,
            "payload": task.payload,
        }
        assert ours == go_fields(view), name
        # Re-encoding what we decoded gives Go's bytes back, created_at included.
        assert codec.encode_scheduled_task(task) == raw[name], name


def test_export_then_plan_shows_no_changes_and_adopt_rewrites_nothing(
    go_made: dict[str, dict[str, Any]], go_server: EmbeddedServer, tmp_path: Path
) -> None:
    url, out = go_server.url, tmp_path / "exported"
    done = run_cli("export", "--dir", str(out), "--server", url, *ADDS)
    assert done.code == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    exported = {p.stem: yaml.safe_load(p.read_text())["schedules"][0] for p in out.iterdir()}
    assert set(exported) == set(ADDS)
    assert exported["GW_MONTHLY"]["schedule"] == "@monthly"
    assert exported["GW_FULL"]["payload"] == '{"a":1}' and exported["GW_FULL"]["deadline"] == "12h0m0s"
    assert exported["GW_EVERY"]["payload"] == "plain <text> & more"

    # Hand-made schedules: nothing to write, only --adopt is asked for (exit 1: blocking).
    plan = plan_json(url, str(out), code=1)
    assert not plan["summary"]["has_changes"]
    conflicts = {n["name"] for n in plan["notices"] if n["kind"] == "unmanaged_conflict"}
    assert conflicts == set(ADDS)

    adopt = plan_json(url, str(out), "--adopt", ",".join(ADDS))
    mine = [c for c in adopt["changes"] if c["name"] in ADDS]
    assert {c["action"] for c in mine} == {"adopt"} and len(mine) == len(ADDS)
    assert [c["name"] for c in mine if c["fields"]] == [], "fields agree, so adopt must not rewrite"

    before = asyncio_records(url)
    done = run_cli("apply", str(out), "--adopt", ",".join(ADDS), "--auto-approve", "--server", url)
    assert done.code == 0, done.stderr
    after = asyncio_records(url)
    assert {n: after[n] for n in ADDS} == {n: before[n] for n in ADDS}, "adopt rewrote a record"
    final = plan_json(url, str(out))
    assert [c["action"] for c in final["changes"] if c["name"] in ADDS] == ["no-op"] * len(ADDS)
    assert not [n for n in final["notices"] if n["name"] in ADDS]


def asyncio_records(url: str) -> dict[str, bytes]:
    return asyncio.run(read_live(url)).records
