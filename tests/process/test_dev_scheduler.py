"""`ajc-gitops dev` as a real process: after apply it runs a scheduler on the embedded server
and prints each task it creates until Ctrl-C, then stops the server (issue 4 item 8)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# "HH:MM:SS  new         <type> -> <queue>  task <27-char KSUID>"
TASK_LINE = re.compile(r"^\d\d:\d\d:\d\d  new +\S+ -> \S+  task [0-9A-Za-z]{27}$", re.M)


def test_dev_streams_created_tasks_until_ctrl_c(tmp_path, wait_until):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    out = tmp_path / "dev.out"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NATS_URL", None)
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ajc_gitops", "dev"], cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    try:
        # Go's election timing applies (a 10 s TTL): leading takes up to 12.5 s.
        wait_until(lambda: TASK_LINE.search(out.read_text()), timeout=40, what="a task line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    assert "Traceback" not in text, text
    assert "Apply complete: 8 added" in text
    assert re.search(r"Stopped nats-server \(pid \d+\)\.", text), text
