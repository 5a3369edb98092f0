"""What the benchmark scripts share: the two raw ceilings, the result table with verdicts, and
the header line for docs/benchmarks.md.

Imported by the scripts in this folder (run as ``python bench/NAME.py``, which puts ``bench/``
on ``sys.path``); not part of the package.

The ceilings, both measured in the caller's run against the caller's server:

* inbox: JetStream publishes of a ``size``-byte body with the expected-sequence header (as a
  task record or a KV create carries), each with its own reply subject on one inbox
  subscription, ``window`` unanswered at most: the fastest nats-py pipeline there is.
* nats bench: natscli's ``nats bench js pub async`` (the server's own ceiling from a Go
  client), built through tests/gopeer/gobuild.py; skipped with the reason where Go is absent.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ajc_gitops.embedded import find_nats_server  # noqa: E402
from tests.gopeer import gobuild  # noqa: E402

CEILING_STREAM = "BENCH_CEILING"
CEILING_BODY_BYTES = 300


@dataclass(frozen=True, slots=True)
class Row:
    measure: str
    result: str
    goal: str = ""
    ok: bool | None = None  # None: no goal on this row


@dataclass(frozen=True, slots=True)
class Ceiling:
    inbox: float  # publishes/s
    nats_bench: float | None  # publishes/s, None when skipped
    skipped: str  # why nats bench did not run ("" when it did)

    def rows(self, what: str, rate: float, per: int, goal: float | None = None) -> list[Row]:
        """The ceilings and ``rate`` (``per`` publishes each) as a share of each; ``goal``: the
        least share of the inbox ceiling that is met."""
        share = rate * per / self.inbox
        out = [Row("ceiling: nats-py inbox-pipelined JetStream publish", f"{self.inbox:,.0f} /s")]
        if goal is None:
            out.append(Row(f"{what} x {per} publishes / inbox ceiling", f"{share:.0%}"))
        else:
            ratio = f"{share:.0%}"
            out.append(Row(f"{what} x {per} publishes / inbox ceiling", ratio, f">= {goal:.0%}", share >= goal))
        if self.nats_bench is None:
            out.append(Row("ceiling: nats bench js pub async", f"skipped: {self.skipped}"))
        else:
            out.append(Row("ceiling: nats bench js pub async (natscli v0.5.0)", f"{self.nats_bench:,.0f} /s"))
            out.append(Row(f"{what} x {per} publishes / nats bench ceiling", f"{rate * per / self.nats_bench:.0%}"))
        return out


async def inbox_publish_rate(url: str, count: int, window: int = 1024, size: int = CEILING_BODY_BYTES) -> float:
    """Publishes/s of the inbox pipeline into a file stream of its own (made, then deleted)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        subject = f"bench.ceiling.{time.monotonic_ns()}"
        await js.add_stream(name=CEILING_STREAM, subjects=[f"{subject}.*"])
        inbox = nc.new_inbox()
        done = asyncio.Event()
        acks = 0
        free = asyncio.Semaphore(window)

        async def on_ack(_msg: object) -> None:
            nonlocal acks
            acks += 1
            free.release()
            if acks == count:
                done.set()

        await nc.subscribe(f"{inbox}.*", cb=on_ack)
        body = b"x" * size
        headers = {"Nats-Expected-Last-Subject-Sequence": "0"}
        started = time.perf_counter()
        for i in range(count):
            await free.acquire()
            await nc.publish(f"{subject}.{i}", body, reply=f"{inbox}.{i}", headers=headers)
        await done.wait()
        rate = count / (time.perf_counter() - started)
        await js.delete_stream(CEILING_STREAM)
        return rate
    finally:
        await nc.close()


def nats_bench_rate(url: str, count: int, size: int = CEILING_BODY_BYTES) -> float | str:
    """``nats bench js pub async`` msgs/s into a file stream of its own, or why it did not run."""
    try:
        nats_cli = gobuild.build(gobuild.NATSCLI).path
    except gobuild.GoUnavailable as exc:
        return str(exc)
    with tempfile.TemporaryDirectory(prefix="ajc-natsbench-") as tmp:
        csv = Path(tmp) / "out.csv"
        stream = f"BENCH_NATS_{time.monotonic_ns()}"
        # v0.5.0 flags (cli/bench_command.go): --create makes the stream, --multisubject puts
        # each message on its own subject as a task record is; the CSV holds MsgsPerSec.
        argv = [str(nats_cli), "--no-context", "-s", url, "bench", "js", "pub", "async", f"natsbench.{stream}",
                "--create", "--storage=file", f"--stream={stream}", f"--msgs={count}", f"--size={size}",
                "--multisubject", "--no-progress", "--csv", str(csv)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
        env["XDG_CONFIG_HOME"] = tmp  # never the user's contexts
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False)
        if done.returncode != 0:
            return f"nats bench exited {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"
        rows = [line.split(",") for line in csv.read_text().splitlines() if line and not line.startswith("#")]
        rate = float(rows[0][4])  # MsgsPerSec of the run (one client)
        subprocess.run([str(nats_cli), "--no-context", "-s", url, "stream", "rm", "-f", stream],
                       capture_output=True, env=env, timeout=60, check=False)  # fmt: skip
        return rate


def measure_ceiling(url: str, count: int) -> Ceiling:
    """Both ceilings against ``url``: the inbox pipeline (best of two runs) and nats bench."""
    inbox = max(asyncio.run(inbox_publish_rate(url, count)) for _ in range(2))
    bench = nats_bench_rate(url, count)
    if isinstance(bench, str):
        return Ceiling(inbox, None, bench)
    return Ceiling(inbox, bench, "")


def server_version() -> str:
    done = subprocess.run([str(find_nats_server()), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "nats-server (version unknown)"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def header(go_tools: Sequence[gobuild.GoTool] = (gobuild.NATSCLI,)) -> str:
    """Date, machine, load and versions: the line docs/benchmarks.md puts above a table."""
    load = os.getloadavg()
    tools = ", ".join(f"{t.binary} {t.version}" for t in go_tools)
    return (
        f"{datetime.date.today().isoformat()}; {platform.machine()}, nproc {os.cpu_count()}, {cpu_model()}; "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end; "
        f"{server_version()}, ajc-gitops {version('ajc-gitops')}, Python {platform.python_version()}"
        + (f", Go {tools}" if tools else "")
    )


def report(
    title: str, rows: Sequence[Row], *, markdown: bool, go_tools: Sequence[gobuild.GoTool] = (gobuild.NATSCLI,)
) -> int:
    """Print the table (a verdict per goal) and return the exit code: 1 when a goal is missed."""
    print(title)
    if markdown:
        print(header(go_tools) + "\n")
    w0 = max(len("measure"), *(len(r.measure) for r in rows))
    w1 = max(len("result"), *(len(r.result) for r in rows))
    w2 = max(len("goal"), *(len(r.goal) for r in rows))
    print(f"| {'measure':<{w0}} | {'result':>{w1}} | {'goal':<{w2}} | verdict |")
    print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|---------|")
    for r in rows:
        verdict = "" if r.ok is None else ("met" if r.ok else "MISSED")
        print(f"| {r.measure:<{w0}} | {r.result:>{w1}} | {r.goal:<{w2}} | {verdict:<7} |")
    missed = [r.measure for r in rows if r.ok is False]
    if missed:
        print(f"{len(missed)} goal(s) missed: {'; '.join(missed)}", file=sys.stderr)
    return 1 if missed else 0


def print_table(rows: Sequence[tuple[str, str, str]], widths: tuple[int, int, int]) -> None:
    """A Markdown table of (measure, result, goal), without verdicts (status_bench.py)."""
    what, value, goal = widths
    print(f"| {'measure':<{what}} | {'result':>{value}} | {'goal':>{goal}} |")
    print(f"|{'-' * (what + 2)}|{'-' * (value + 2)}|{'-' * (goal + 2)}|")
    for row in rows:
        print(f"| {row[0]:<{what}} | {row[1]:>{value}} | {row[2]:>{goal}} |")
