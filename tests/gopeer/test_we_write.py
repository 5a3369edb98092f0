"""We write, Go reads: what ``ajc-gitops apply`` stores is what the real Go CLI shows, and is
byte for byte what ``ajc task cron add`` stores for the same input (issue #10, item 3)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from ajc_gitops.embedded import EmbeddedServer
from tests.faults.support import read_live, run_cli
from tests.gopeer.peer import Ajc, cron_fields
from tests.scheduler_support import tasks_now

pytestmark = pytest.mark.integration


@dataclass(frozen=True, slots=True)
class Case:
    entry: dict[str, Any]  # the manifest mapping, without the name
    view: dict[str, Any]  # what `ajc task cron view --json` must show (payload as bytes)
    cli: tuple[str, ...] | None = None  # the same input to `ajc task cron add`, when it can say it


UNICODE = 'a <b> & c grüße \u2028 ☃ "q" \\ /'

CASES: dict[str, Case] = {
    "WR_FULL": Case(
        {
            "schedule": "0 0 1 * *",
            "task_type": "email:monthly",
            "queue": "WR_EMAIL",
            "payload": '{"a":1}',
            "deadline": "12h",
            "max_tries": 3,
        },
        cron_fields("0 0 1 * *", "email:monthly", "WR_EMAIL", 43200, 3, b'"{\\"a\\":1}"'),
        (
            "0 0 1 * *",
            "email:monthly",
            "--queue",
            "WR_EMAIL",
            "--payload",
            '{"a":1}',
            "--deadline",
            "12h",
            "--tries",
            "3",
        ),
    ),
    "WR_DEFAULTS": Case({"schedule": "@daily", "task_type": "t:d"}, cron_fields("@daily", "t:d"), ("daily", "t:d")),
    "WR_BARE_WORD": Case(
        {"schedule": "monthly", "task_type": "t:m"}, cron_fields("@monthly", "t:m"), ("monthly", "t:m")
    ),
    "WR_EVERY": Case(
        {"schedule": "every 90s", "task_type": "t:e", "deadline": "1.5h"},
        cron_fields("@every 90s", "t:e", deadline_s=5400),
        ("every 90s", "t:e", "--deadline", "1.5h"),
    ),
    "WR_CRON_TZ": Case(
        {"schedule": "CRON_TZ=America/New_York 15 9 * * mon-fri", "task_type": "t:ny", "max_tries": 1},
        cron_fields("CRON_TZ=America/New_York 15 9 * * mon-fri", "t:ny", max_tries=1),
        ("CRON_TZ=America/New_York 15 9 * * mon-fri", "t:ny", "--tries", "1"),
    ),
    "WR_TZ": Case(
        {"schedule": "TZ=Asia/Tokyo 0 0 * * *", "task_type": "t:tokyo"},
        cron_fields("TZ=Asia/Tokyo 0 0 * * *", "t:tokyo"),
        ("TZ=Asia/Tokyo 0 0 * * *", "t:tokyo"),
    ),
    "WR_STRING": Case(
        {"schedule": "*/5 * * * *", "task_type": "t:s", "payload": UNICODE},
        cron_fields(
            "*/5 * * * *",
            "t:s",
            payload=json.dumps(UNICODE, ensure_ascii=False)
            .encode()
            .replace(b"<", b"\\u003c")
            .replace(b">", b"\\u003e")
            .replace(b"&", b"\\u0026")
            .replace("\u2028".encode(), b"\\u2028"),
        ),
        ("*/5 * * * *", "t:s", "--payload", UNICODE),
    ),
    "WR_SPACES": Case(
        {"schedule": "0  12 * *   *", "task_type": "t:sp"},
        cron_fields("0  12 * *   *", "t:sp"),
        ("0  12 * *   *", "t:sp"),
    ),
    "WR_FRACTION": Case(
        {"schedule": "@hourly", "task_type": "t:f", "deadline": "90.4s"},
        cron_fields("@hourly", "t:f", deadline_s=90),
        ("hourly", "t:f", "--deadline", "90.4s"),
    ),
    "WR_TRIES_ZERO": Case(
        {"schedule": "@hourly", "task_type": "t:z", "max_tries": 0},
        cron_fields("@hourly", "t:z"),
        ("hourly", "t:z", "--tries", "0"),
    ),
    # Forms the Go CLI cannot express (its payloads are always JSON strings): Go shows them.
    "WR_OBJECT": Case(
        {"schedule": "@weekly", "task_type": "t:o", "payload": {"b": 2, "a": [1, True, None, 2.5], "c": {"d": "<x>"}}},
        cron_fields("@weekly", "t:o", payload=b'{"a":[1,true,null,2.5],"b":2,"c":{"d":"\\u003cx\\u003e"}}'),
    ),
    "WR_NULL": Case(
        {"schedule": "@weekly", "task_type": "t:n", "payload": None}, cron_fields("@weekly", "t:n", payload=b"null")
    ),
    "WR_BASE64": Case(
        {"schedule": "@weekly", "task_type": "t:b", "payload_base64": base64.b64encode(b"\x00\xffraw\n").decode()},
        cron_fields("@weekly", "t:b", payload=b"\x00\xffraw\n"),
    ),
}


def go_fields(shown: dict[str, Any]) -> dict[str, Any]:
    payload = shown.get("payload")
    return {
        "schedule": shown["schedule"],
        "queue": shown["queue"],
        "task_type": shown["task_type"],
        "deadline_s": shown.get("deadline", 0) // 10**9,
        "max_tries": shown["max_tries"],
        "payload": None if payload is None else base64.b64decode(payload),
    }


@pytest.fixture(scope="module")
def applied(ajc: Ajc, go_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every CASES manifest applied once by ajc-gitops; name -> the stored record."""
    directory = tmp_path_factory.mktemp("we-write")
    schedules = [{"name": name, **case.entry} for name, case in CASES.items()]
    (directory / "schedules.yaml").write_text(yaml.safe_dump({"schedules": schedules}, allow_unicode=True))
    done = run_cli("apply", str(directory), "--auto-approve", "--server", go_server.url)
    assert done.code == 0, done.stderr
    records = asyncio.run(read_live(go_server.url)).records
    return {name: records[name] for name in CASES}


def test_go_cli_shows_what_the_manifests_say(ajc: Ajc, applied: dict[str, bytes]) -> None:
    for name, case in CASES.items():
        shown = ajc.json("task", "cron", "view", name, "--json")
        assert shown["name"] == name
        assert go_fields(shown) == case.view, name


def test_go_cli_lists_every_schedule(ajc: Ajc, applied: dict[str, bytes]) -> None:
    names = ajc.run("task", "cron", "list", "--names").stdout.split()
    assert set(CASES) <= set(names)
    table = ajc.run("task", "cron", "list").stdout
    rows = {line.split("│")[1].strip(): line for line in table.splitlines() if line.count("│") > 5}
    for name, case in CASES.items():
        row = [cell.strip() for cell in rows[name].split("│")[1:-1]]
        assert row[:4] == [name, case.view["schedule"], case.view["queue"], case.view["task_type"]], row


_CREATED_AT = re.compile(rb'"created_at":"[^"]*"')


def comparable(record: bytes, name: str) -> bytes:
    """The record with its name set to ``name`` and created_at blanked (wall-clock time)."""
    record = _CREATED_AT.sub(b'"created_at":""', record)
    return re.sub(rb'^\{"name":"[^"]*"', b'{"name":"' + name.encode() + b'"', record)


def test_records_are_byte_for_byte_what_ajc_task_cron_add_writes(
    ajc: Ajc, go_server: EmbeddedServer, applied: dict[str, bytes]
) -> None:
    twins = {name: f"GO_{name}" for name, case in CASES.items() if case.cli is not None}
    for name, twin in twins.items():
        cli = CASES[name].cli
        assert cli is not None
        ajc.run("task", "cron", "add", twin, *cli)
    records = asyncio.run(read_live(go_server.url)).records
    differ = {
        name: (applied[name], records[twin])
        for name, twin in twins.items()
        if comparable(applied[name], name) != comparable(records[twin], name)
    }
    assert not differ, "\n".join(f"{n}:\n  ours {a!r}\n  Go's {b!r}" for n, (a, b) in differ.items())


def test_go_refuses_a_deadline_we_accept_iff_we_refuse_it(ajc: Ajc, tmp_path: Path) -> None:
    """The 30 s floor after Go's rounding: both sides draw the line at the same place."""
    for i, deadline in enumerate(("29.4s", "29.5s", "29.6s", "30s", "29.999s")):
        go = ajc.run("task", "cron", "add", f"WR_FLOOR_{i}", "hourly", "t:floor", "--deadline", deadline, check=False)
        manifest = tmp_path / f"floor{i}.yaml"
        manifest.write_text(
            f"schedules:\n  - {{name: WR_FLOOR_{i}, schedule: '@hourly', task_type: t, deadline: {deadline}}}\n"
        )
        ours = run_cli("validate", str(manifest))
        assert (go.code == 0) == (ours.code == 0), (deadline, go.stderr, ours.stdout + ours.stderr)


def _created(task: dict[str, Any]) -> float:
    """A task's ``created`` (RFC3339Nano, UTC) as Unix seconds."""
    text = task["created"].rstrip("Z")
    whole, _, frac = text.partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(f"0.{frac or 0}")


def test_an_update_never_makes_a_running_go_scheduler_fire_the_old_definition(
    go_ajc: Path, nats_server: EmbeddedServer, tmp_path: Path, wait_until: Any
) -> None:
    """Contract §3: Go never removes the cron entry of a Put-over key, so after a plain update it
    fires on the old times too. Our update (Delete, then Create) leaves it one entry: once the
    new definition fires, nothing fires on the old 1 s cadence or with the old type."""
    url, ajc = nats_server.url, Ajc(go_ajc, nats_server.url, tmp_path / "ajc")
    manifest = tmp_path / "m" / "schedules.yaml"
    manifest.parent.mkdir()

    def apply(schedule: str, task_type: str) -> None:
        manifest.write_text(f"schedules:\n  - {{name: WR_LIVE, schedule: '{schedule}', task_type: '{task_type}'}}\n")
        done = run_cli("apply", str(manifest.parent), "--auto-approve", "--server", url)
        assert done.code == 0, done.stderr

    def of(task_type: str) -> list[dict[str, Any]]:
        return sorted((t for t in tasks_now(url) if t["type"] == task_type), key=_created)

    apply("@every 1s", "t:old")
    ajc.run("task", "cron", "list")  # any Go client creates the tasks stream and DEFAULT queue
    try:
        ajc.scheduler("go-sched")
        # Go campaigns with a 0-5 s splay and leads one 7.5 s tick after winning.
        wait_until(lambda: len(of("t:old")) >= 2, timeout=30, what="the Go scheduler firing the first definition")
        apply("@every 3s", "t:new")
        wait_until(lambda: len(of("t:new")) >= 4, timeout=30, what="four fires of the updated definition")
        new = of("t:new")
        first_new = _created(new[0])
        late_old = [t["id"] for t in of("t:old") if _created(t) > first_new]
        assert not late_old, f"the old definition fired after the new one: {late_old}"
        gaps = [round(_created(b) - _created(a), 2) for a, b in itertools.pairwise(new)]
        assert min(gaps) > 2.5, f"the updated schedule fired on the old 1 s cadence too: gaps {gaps}"
    finally:
        ajc.stop_all()
