"""Fixtures for the fault suite; the helpers they use live in ``tests/faults/support.py``."""

from __future__ import annotations

from collections.abc import Iterator

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
