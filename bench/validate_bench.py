"""Cold start of `ajc-gitops validate one.yaml` against `python -c "import yaml"` (the
pre-commit baseline, measured in the same run, interleaved), and 10,000 schedules in 1,000
files. Prints a table of medians and ratios; goals: cold start < 300 ms and < 4x the
baseline, the large tree < 2 s.

    python bench/validate_bench.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import Row, report

ONE = """\
schedules:
  - name: EMAIL_MONTHLY_UPDATE
    schedule: "0 0 1 * *"
    queue: EMAIL
    task_type: email:monthly
    payload: {template: monthly}
    deadline: 12h
    max_tries: 5
"""


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd} failed: {done.stdout.decode()}{done.stderr.decode()}")
    return elapsed


def _write_tree(root: Path, files: int, per_file: int) -> None:
    for f in range(files):
        lines = ["schedules:"]
        for s in range(per_file):
            n = f * per_file + s
            lines += [
                f"  - name: job-{n:05d}",
                f'    schedule: "{n % 60} {n % 24} * * *"'
                if n % 3
                else f'    schedule: "CRON_TZ=Europe/Berlin {n % 60} 9-17 * * mon-fri"',
                f"    queue: Q{n % 7}",
                "    task_type: bench:run",
                f"    payload: {{id: {n}, tags: [a, b]}}",
                "    deadline: 1h",
            ]
        (root / f"m{f:04d}.yaml").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    args = parser.parse_args()
    exe = str(Path(sys.executable).parent / "ajc-gitops")
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.yaml"
        one.write_text(ONE)
        baseline_cmd = [sys.executable, "-c", "import yaml"]
        validate_cmd = [exe, "validate", str(one)]
        for cmd in (baseline_cmd, validate_cmd):  # warm the page cache
            _timed(cmd)
        base, ours, ratios = [], [], []
        for _ in range(args.runs):
            b = _timed(baseline_cmd)
            v = _timed(validate_cmd)
            base.append(b)
            ours.append(v)
            ratios.append(v / b)
        tree = Path(tmp) / "tree"
        tree.mkdir()
        _write_tree(tree, files=1000, per_file=10)
        large = [_timed([exe, "validate", str(tree)]) for _ in range(3)]

    def ms(values: list[float]) -> str:
        return (
            f"{statistics.median(values) * 1000:8.1f} ms (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )

    cold = statistics.median(ours)
    ratio = statistics.median(ratios)
    large_s = statistics.median(large)
    rows = [
        Row("python -c 'import yaml' (baseline)", ms(base)),
        Row("ajc-gitops validate one.yaml", ms(ours), "< 300 ms", cold < 0.3),
        Row("ratio validate / baseline (pairwise median)", f"{ratio:.2f} x", "< 4x", ratio < 4),
        Row("validate 10,000 schedules in 1,000 files", ms(large), "< 2 s", large_s < 2),
    ]
    return report("validate benchmark (pre-commit cold start)", rows, markdown=args.markdown, go_tools=())


if __name__ == "__main__":
    raise SystemExit(main())
