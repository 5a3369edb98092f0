"""Fixtures for the fault suite; the helpers they use live in ``tests/faults/support.py``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import CliProcess


@pytest.fixture
def cli() -> Iterator[type[CliProcess]]:
    """Start CLI processes; any still running at the end of the test are killed by PID."""
    started: list[CliProcess] = []

    class Tracked(CliProcess):
        def __init__(self, *args: str) -> None:
            super().__init__(*args)
            started.append(self)

    yield Tracked
    for proc in started:
        proc.kill()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long variants here run only when asked for (``-m slow``, or ``AJC_FAULT_LONG=1``):
    they take minutes, and the default run, which CI uses, keeps one short round of each."""
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("AJC_FAULT_LONG") == "1":
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="long fault variant: run with -m slow (README 'Long runs')")
    for item in items:
        if item.get_closest_marker("slow") is not None and here in item.path.parents:
            item.add_marker(skip)
