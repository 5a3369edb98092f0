"""plan, apply, export and dev as real processes against a real nats-server: exit codes,
the TTY prompt and its refusal without one, one-line errors, never a traceback."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ajc_gitops.embedded import free_ports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "schedules"


def run(
    *args: str, cwd: Path | None = None, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NATS_URL", None)
    env.pop("NATS_CONTEXT", None)
    env.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, "-m", "ajc_gitops", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        input=stdin,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def test_plan_and_apply_exit_codes(nats_server):
    url = nats_server.url
    planned = run("plan", str(EXAMPLES), "-s", url, "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 8 to add, 0 to change, 0 to destroy." in planned.stdout
    assert run("plan", str(EXAMPLES), "-s", url).returncode == 0  # without the flag: 0

    applied = run("apply", str(EXAMPLES), "-s", url, "--auto-approve", "--detailed-exitcode")
    assert applied.returncode == 2, applied.stderr
    assert "Apply complete: 8 added, 0 changed, 0 destroyed." in applied.stdout

    again = run("apply", str(EXAMPLES), "-s", url, "--detailed-exitcode")
    assert again.returncode == 0 and "No changes." in again.stdout
    assert run("plan", str(EXAMPLES), "-s", url, "--detailed-exitcode", "-o", "json").returncode == 0


def test_apply_without_a_tty_refuses_and_changes_nothing(nats_server):
    done = run("apply", str(EXAMPLES), "-s", nats_server.url, "--detailed-exitcode")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: refusing to apply without confirmation")
    assert "--auto-approve" in done.stderr
    assert run("plan", str(EXAMPLES), "-s", nats_server.url, "--detailed-exitcode").returncode == 2


def _run_on_pty(args: list[str], answer: bytes | None, timeout: float = 30.0) -> tuple[int, str]:
    """Run with stdin/stdout on a pseudo-terminal; type ``answer`` when the prompt appears
    (``None``: press ^C instead, as SIGINT)."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ajc_gitops", *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    seen = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if not answered and b"Only 'yes' will be accepted:" in seen:
                    if answer is None:
                        proc.send_signal(signal.SIGINT)
                    else:
                        os.write(controller, answer)
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    return code, seen.decode(errors="replace")


def test_apply_on_a_tty_asks_and_only_yes_applies(nats_server):
    args = ["apply", str(EXAMPLES), "-s", nats_server.url, "--detailed-exitcode"]
    code, text = _run_on_pty(args, None)  # ^C at the prompt: no hang, nothing applied
    assert code == 130 and "Traceback" not in text  # typer turns ^C into exit 130
    code, text = _run_on_pty(args, b"no\n")
    assert code == 1 and "apply cancelled" in text and "Traceback" not in text
    code, text = _run_on_pty(args, b"yes\n")
    assert code == 2, text
    assert "Apply complete: 8 added" in text and "Traceback" not in text


def test_server_down_is_one_line_naming_the_url_within_the_timeout(tmp_path):
    url = f"nats://127.0.0.1:{free_ports(1)[0]}"
    for command in (["plan", str(EXAMPLES)], ["apply", str(EXAMPLES), "--auto-approve"], ["export"]):
        started = time.monotonic()
        done = run(*command, "-s", url, "--timeout", "1")
        assert time.monotonic() - started < 10  # interpreter start included
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and url in lines[0] and "cannot connect" in lines[0], done.stderr


def test_bad_credentials_are_one_line(nats_server_factory):
    server = nats_server_factory(extra_config="authorization { user: admin, password: adminpw }")
    done = run("plan", str(EXAMPLES), "-s", server.url, "--user", "admin", "--password", "wrong")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert "authorization failed" in line and server.url in line and "wrong" not in line


def test_manifest_problems_block_plan_like_validate(nats_server, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedules:\n  - name: a\n    schedule: '0 0 * * 7'\n    task_type: t\n")
    done = run("plan", str(bad), "-s", nats_server.url, "--detailed-exitcode")
    assert done.returncode == 1
    assert f"{bad}:3:15: error: invalid cron schedule" in done.stdout


def test_saved_plan_applies_and_export_round_trips(nats_server, tmp_path):
    url = nats_server.url
    planfile = tmp_path / "tfplan"
    done = run("plan", str(EXAMPLES), "-s", url, "--out", str(planfile))
    assert done.returncode == 0 and planfile.exists()
    applied = run("apply", str(planfile), "-s", url, "--detailed-exitcode")
    assert applied.returncode == 2, applied.stderr
    stale = run("apply", str(planfile), "-s", url)
    assert stale.returncode == 1 and "the plan is stale" in stale.stderr
    exported = run("export", "--dir", str(tmp_path / "exported"), "-s", url)
    assert exported.returncode == 0, exported.stderr
    # Managed already, so the export plans as no changes at all.
    assert run("plan", str(tmp_path / "exported"), "-s", url, "--detailed-exitcode").returncode == 0


def test_dev_runs_the_main_job_end_to_end(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    done = run("dev", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Plan: 8 to add, 0 to change, 0 to destroy." in done.stdout
    assert "Apply complete: 8 added, 0 changed, 0 destroyed." in done.stdout
    assert done.stdout.count("No changes.") == 1
    assert "NATS_URL=nats://127.0.0.1:" in done.stdout
    assert (tmp_path / ".ajc-gitops" / "store").is_dir()
    second = run("dev", "--once", cwd=tmp_path)  # the store persists: nothing left to do
    assert second.returncode == 0 and "Nothing to apply." in second.stdout


def test_connection_comes_from_nats_url_or_a_nats_context(nats_server, tmp_path):
    done = run("plan", str(EXAMPLES), "--detailed-exitcode", extra_env={"NATS_URL": nats_server.url})
    assert done.returncode == 2 and nats_server.url in done.stdout
    contexts = tmp_path / "nats" / "context"
    contexts.mkdir(parents=True)
    (contexts / "ajc.json").write_text(f'{{"url": "{nats_server.url}"}}')
    done = run("export", "--context", "ajc", extra_env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 0 and done.stdout.startswith("schedules: []"), done.stderr
    missing = run("plan", str(EXAMPLES), "--context", "nope", extra_env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert missing.returncode == 1 and "NATS context 'nope'" in missing.stderr
