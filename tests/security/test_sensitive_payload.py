"""A schedule marked ``payload_sensitive`` never shows its payload in plan or apply output, in
any format, through its whole life: created, changed, unchanged, deleted with ``--prune``
(when only the ownership marker still knows it was sensitive), and unmarked. Export keeps the
flag, so exported manifests plan as no changes. Real CLI processes against a real server; each
secret is a distinctive random string searched for in everything printed."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.plan.fields import SENSITIVE_TEXT
from tests.security.conftest import CliResult, RunCli

pytestmark = pytest.mark.integration

FORMATS = ("text", "json", "markdown", "github")


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(10)}"


def _write(directory: Path, token: str, raw: str, *, visible: str, sensitive: bool = True) -> None:
    flag = "true" if sensitive else "false"
    (directory / "secret.yaml").write_text(
        "schedules:\n"
        "  - name: SECRET_JSON\n"
        '    schedule: "@every 1h"\n'
        "    task_type: report:send\n"
        f"    payload: {{token: {token}}}\n"
        f"    payload_sensitive: {flag}\n"
        "  - name: PUBLIC\n"
        '    schedule: "@daily"\n'
        "    task_type: report:send\n"
        f"    payload: {{note: {visible}}}\n"
    )
    encoded = base64.b64encode(raw.encode()).decode()
    (directory / "raw.yaml").write_text(
        "defaults:\n"
        "  task_type: raw:send\n"
        "  payload_sensitive: true\n"
        "schedules:\n"
        "  - name: SECRET_RAW\n"
        '    schedule: "0 3 * * *"\n'
        f"    payload_base64: {encoded}\n"
    )


def _plans(run_cli: RunCli, manifests: Path, server: EmbeddedServer, *flags: str) -> dict[str, CliResult]:
    return {f: run_cli("plan", str(manifests), "-s", server.url, "--format", f, *flags) for f in FORMATS}


def _assert_masked(results: dict[str, CliResult] | list[CliResult], *hidden: str) -> None:
    for result in results.values() if isinstance(results, dict) else results:
        for secret in hidden:
            assert secret not in result.text, f"{secret!r} leaked:\n{result.text}"


def _json_fields(result: CliResult) -> dict[str, dict[str, tuple[str | None, str | None]]]:
    document = json.loads(result.out)
    return {
        c["name"]: {f["field"]: (f["before"], f["after"]) for f in c["fields"]}
        | {"sensitive": (str(c["sensitive"]), None)}
        for c in document["changes"]
    }


def test_a_sensitive_payload_is_masked_through_its_whole_life(
    nats_server: EmbeddedServer, run_cli: RunCli, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    token, raw, visible = _secret("token"), _secret("raw"), _secret("visible")
    _write(manifests, token, raw, visible=visible)
    encoded_raw = base64.b64encode(raw.encode()).decode()
    hidden = (token, raw, encoded_raw)

    # Create: every format masks the sensitive payloads and still shows the public one.
    created = _plans(run_cli, manifests, nats_server)
    _assert_masked(created, *hidden)
    for fmt, result in created.items():
        assert result.code == 0 and SENSITIVE_TEXT in result.out, (fmt, result.text)
        assert visible in result.out, fmt
    fields = _json_fields(created["json"])
    assert fields["SECRET_JSON"]["payload"] == (None, SENSITIVE_TEXT)
    assert fields["SECRET_RAW"]["payload"] == (None, SENSITIVE_TEXT)
    assert fields["SECRET_JSON"]["sensitive"][0] == "True" and fields["PUBLIC"]["sensitive"][0] == "False"

    # A saved plan and its apply: the output masks; the plan file itself holds the record.
    plan_file = tmp_path / "create.plan"
    saved = run_cli("plan", str(manifests), "-s", nats_server.url, "--out", str(plan_file))
    applied = run_cli("apply", str(plan_file), "-s", nats_server.url)
    _assert_masked([saved, applied], *hidden)
    assert applied.code == 0, applied.text
    in_file = {c["name"]: c["sensitive"] for c in json.loads(plan_file.read_text())["changes"]}
    assert in_file == {"PUBLIC": False, "SECRET_JSON": True, "SECRET_RAW": True}

    # Unchanged: nothing to show. Changed: shown as changed, both sides masked.
    unchanged = run_cli("plan", str(manifests), "-s", nats_server.url, "--detailed-exitcode")
    assert unchanged.code == 0 and "No changes" in unchanged.out, unchanged.text
    new_token = _secret("token2")
    _write(manifests, new_token, raw, visible=visible)
    changed = _plans(run_cli, manifests, nats_server)
    _assert_masked(changed, *hidden, new_token)
    assert f"payload: {SENSITIVE_TEXT} -> {SENSITIVE_TEXT}" in changed["text"].out
    assert _json_fields(changed["json"])["SECRET_JSON"]["payload"] == (SENSITIVE_TEXT, SENSITIVE_TEXT)
    applied = run_cli("apply", str(manifests), "-s", nats_server.url, "--auto-approve")
    _assert_masked([applied], *hidden, new_token)
    assert applied.code == 0, applied.text

    # Export keeps the flag, so the exported manifests plan as no changes.
    exported = tmp_path / "exported"
    export = run_cli("export", "-s", nats_server.url, "--dir", str(exported))
    assert export.code == 0, export.text
    assert "payload_sensitive: true" in (exported / "SECRET_JSON.yaml").read_text()
    assert "payload_sensitive" not in (exported / "PUBLIC.yaml").read_text()
    again = run_cli("plan", str(exported), "-s", nats_server.url, "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.out, again.text

    # Gone from Git and pruned: only the ownership marker remembers; still masked.
    (manifests / "raw.yaml").unlink()
    pruned = _plans(run_cli, manifests, nats_server, "--prune")
    _assert_masked(pruned, *hidden, new_token)
    assert _json_fields(pruned["json"])["SECRET_RAW"]["payload"] == (SENSITIVE_TEXT, None)
    assert "SECRET_RAW" in pruned["text"].out and SENSITIVE_TEXT in pruned["text"].out

    # Unmarked in Git: that plan still masks (either side marks it); once applied, a delete shows it.
    _write(manifests, new_token, raw, visible=visible, sensitive=False)
    unmarking = run_cli("plan", str(manifests), "-s", nats_server.url, "--prune", "--format", "json")
    _assert_masked([unmarking], new_token)
    assert run_cli("apply", str(manifests), "-s", nats_server.url, "--prune", "--auto-approve").code == 0
    (manifests / "secret.yaml").write_text(
        'schedules:\n  - name: PUBLIC\n    schedule: "@daily"\n    task_type: report:send\n'
        f"    payload: {{note: {visible}}}\n"
    )
    shown = run_cli("plan", str(manifests), "-s", nats_server.url, "--prune", "--format", "json")
    assert _json_fields(shown)["SECRET_JSON"]["payload"] == (
        json.dumps({"token": new_token}, separators=(",", ":")),
        None,
    )
