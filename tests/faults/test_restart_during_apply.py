"""The NATS server restarted (gracefully, or killed and started again) while `apply` of a few
thousand schedules is writing: the real CLI process either completes or stops with one error line
and exit 1, never a traceback; a rerun of apply then plan converges to "No changes" with exactly
the manifest's schedules in the bucket, every record decoded and compared.

A round counts only when the fault landed inside the apply: the bucket holds at least the
trigger's writes of it when the server comes back, and writes are still to come after that
(by the same process, or by the rerun that finishes its work). When timing misses (the apply
finished first), the round is still checked, then run again with a fresh manifest: the
injection is retried, never the verdict, up to a bound."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.names import CONFIG_BUCKET
from tests.faults.support import (
    CliProcess,
    assert_clean_failure,
    assert_exactly,
    desired_tasks,
    manifest_text,
    read_live,
    repeat,
    run_cli,
    same_task,
    stream_last_seq,
    stream_seqs,
    write_manifest,
)

pytestmark = pytest.mark.integration

SCHEDULES = 3000
Waiter = Callable[..., Any]  # the wait_until fixture
TIMEOUT = "3"  # --timeout: how long the CLI waits for a silent server
BUCKET_STREAM = f"KV_{CONFIG_BUCKET}"


def _break(server: EmbeddedServer, how: str) -> None:
    if how == "restart":  # SIGTERM, then the same ports and store again
        server.restart()
    elif how == "crash":  # SIGKILL: no clean shutdown at all
        server.kill()
        server.start()
    else:  # "freeze-crash": SIGSTOP at once (so writes are surely cut mid-flight), then SIGKILL
        server.pause()
        server.kill()
        server.start()


def _one_round(
    server: EmbeddedServer, paths: Path, cli: type[CliProcess], how: str, trigger: int, wait_until: Waiter
) -> str | None:
    """One apply broken by ``how`` once ``trigger`` writes have landed; returns the outcome, or
    None when the fault did not land inside the apply's writes (the caller runs another)."""
    url = server.url
    before = stream_last_seq(server)
    apply = cli("apply", str(paths), "-s", url, "--auto-approve", "--timeout", TIMEOUT)
    # The bucket's last sequence moves on every write, so it says how far the apply got.
    wait_until(
        lambda: stream_last_seq(server) >= before + trigger or not apply.running,
        timeout=30,
        what=f"{trigger} writes of the apply",
    )
    broken = apply.running
    at_restart = None
    if broken:
        _break(server, how)
        # What the server kept of the apply, read once the stream is back.
        at_restart = wait_until(lambda: stream_seqs(server).get(BUCKET_STREAM), 30, "the bucket after the restart")
        assert at_restart >= before + trigger, (before, trigger, at_restart)  # writes before the fault
    done = apply.finish()
    if done.code == 0:
        assert "Apply complete:" in done.stdout
        outcome = "completed"
    else:
        assert broken, done.stderr  # with no fault, the apply must succeed
        line = assert_clean_failure(done, naming=url)
        assert "apply incomplete" in line or "connection lost" in line or "timed out" in line, line
        outcome = "stopped"
    # What the interrupted apply left: records already as the manifest says, and records
    # absent (between their Delete and their Create, or never created).
    wanted = desired_tasks(paths)
    after = asyncio.run(read_live(url))
    written = sum(1 for n, t in after.tasks().items() if n in wanted and same_task(t, wanted[n]))
    absent = len(set(wanted) - set(after.records))
    # A rerun converges: apply what is left, then the plan is empty.
    rerun = run_cli("apply", str(paths), "-s", url, "--auto-approve", "--timeout", TIMEOUT)
    assert rerun.code == 0, rerun.stderr
    planned = run_cli("plan", str(paths), "-s", url, "--detailed-exitcode")
    assert planned.code == 0 and "No changes." in planned.stdout, planned.stdout[-500:]
    assert_exactly(asyncio.run(read_live(url)), wanted)
    # Writes after the fault: the apply had work left when the server went away.
    after_fault = None if at_restart is None else stream_last_seq(server) - at_restart
    print(
        f"  {how} after {trigger} writes: exit {done.code} in {done.seconds:.1f}s, {written}/{len(wanted)} "
        f"as the manifest, {absent} absent, writes before/after the fault "
        f"{None if at_restart is None else at_restart - before}/{after_fault}: "
        f"{(done.error_lines or [''])[-1][:160]}"
    )
    if not after_fault:
        print(f"  {how}: the fault missed the apply's writes; run again")
        return None
    return outcome


def _rounds(
    server: EmbeddedServer, tmp_path: Path, cli: type[CliProcess], how: str, rounds: int, wait_until: Waiter
) -> None:
    # Baseline without a fault: half the schedules exist, so the broken apply changes those
    # (marker Update, Delete, Create) and creates the other half (marker Create, Create).
    half = SCHEDULES // 2
    base = write_manifest(tmp_path / "base", manifest_text(half, variant="base"))
    assert run_cli("apply", str(base), "-s", server.url, "--auto-approve").code == 0
    outcomes: Counter[str] = Counter()
    attempts = 0
    while sum(outcomes.values()) < rounds:
        assert attempts < rounds + 3, f"the fault landed in {sum(outcomes.values())} of {attempts} applies"
        paths = write_manifest(tmp_path / f"m{attempts}", manifest_text(SCHEDULES, variant="v" * (attempts + 1)))
        # Alternate where the fault lands: the first write (markers), or half way through the
        # Deletes of the changed schedules, the moment that leaves records absent.
        trigger = 1 if sum(outcomes.values()) % 2 else SCHEDULES + half // 2
        outcome = _one_round(server, paths, cli, how, trigger, wait_until)
        attempts += 1
        if outcome is not None:
            outcomes[outcome] += 1
    print(f"restart during apply ({how}): {rounds} rounds landed ({attempts} run), {dict(outcomes)}")


@pytest.mark.parametrize("how", ["restart", "crash", "freeze-crash"])
def test_server_restart_during_apply_converges(nats_server, tmp_path, cli, wait_until, how):
    _rounds(nats_server, tmp_path, cli, how, repeat(1), wait_until)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("how", ["restart", "crash", "freeze-crash"])
def test_server_restart_during_apply_converges_repeatedly(nats_server, tmp_path, cli, wait_until, how):
    _rounds(nats_server, tmp_path, cli, how, repeat(10), wait_until)
