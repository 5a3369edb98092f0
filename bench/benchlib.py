"""What the benchmark scripts share: the pipelined nats-py baseline loop and the result table.

Imported by the scripts in this folder (run as ``python bench/NAME.py``, which puts ``bench/``
on ``sys.path``); not part of the package.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence


async def pipelined_rate(count: int, window: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Calls per second of ``one(0) .. one(count - 1)`` with ``window`` in flight at a time:
    the way a nats-py user pipelines (``asyncio.gather`` under a semaphore)."""
    limit = asyncio.Semaphore(window)

    async def call(i: int) -> None:
        async with limit:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(count)))
    return count / (time.perf_counter() - started)


def print_table(rows: Sequence[tuple[str, str, str]], widths: tuple[int, int, int]) -> None:
    """A Markdown table of (measure, result, goal), as docs/benchmarks.md quotes it."""
    what, value, goal = widths
    print(f"| {'measure':<{what}} | {'result':>{value}} | {'goal':>{goal}} |")
    print(f"|{'-' * (what + 2)}|{'-' * (value + 2)}|{'-' * (goal + 2)}|")
    for row in rows:
        print(f"| {row[0]:<{what}} | {row[1]:>{value}} | {row[2]:>{goal}} |")
