"""Signals to a server process, and what they take to land."""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["wait_stopped"]


def wait_stopped(pid: int, timeout: float = 2.0) -> None:
    """Return once every thread of ``pid`` is stopped: ``kill`` returns before a busy
    multi-threaded process has stopped them all, and one may still answer meanwhile. Linux only
    (``/proc``); elsewhere, and after ``timeout``, it returns at once."""
    tasks = Path(f"/proc/{pid}/task")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
        except (OSError, IndexError):
            return
        if all(state in ("T", "t") for state in states):
            return
        time.sleep(0.001)
