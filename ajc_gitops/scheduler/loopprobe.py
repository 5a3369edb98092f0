"""How long the event loop goes without running its callbacks: a task that sleeps a short
tick and measures by how much it overslept.

Why: everything time-critical in the scheduler (the election refresh, the NATS pings, the
fire loop's wake-up) shares one event loop, so one synchronous pass over a large schedule set
is felt as a late refresh, a lost lease or a reconnect. The overshoot of a 10 ms sleep is the
longest stretch the loop spent elsewhere, give or take one tick; it is exported (metrics
``ajc_gitops_scheduler_event_loop_stall*``) and a stall past ``WARN_S`` is logged, so a
benchmark or an operator can read it from a running process.

The phase ("loading" until the schedule set is complete, then "running") lets the loading
stalls be told from the steady ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Literal, Protocol

__all__ = ["TICK_S", "WARN_S", "LoopProbe", "Phase", "StallObserver"]

TICK_S = 0.010
WARN_S = 0.100  # the bound we hold ourselves to; longer stalls are logged
Phase = Literal["loading", "running"]
_log = logging.getLogger(__name__)


class StallObserver(Protocol):
    """``scheduler.metrics.SchedulerMetrics`` implements it."""

    def loop_stall(self, phase: str, seconds: float) -> None: ...


class LoopProbe:
    """``run()`` until cancelled; ``longest`` holds the worst stall seen per phase."""

    def __init__(
        self,
        observer: StallObserver,
        *,
        tick_s: float = TICK_S,
        warn_s: float = WARN_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._observer = observer
        self._tick_s = tick_s
        self._warn_s = warn_s
        self._monotonic = monotonic
        self.phase: Phase = "loading"
        self.longest: dict[str, float] = {"loading": 0.0, "running": 0.0}

    async def run(self) -> None:
        while True:
            started = self._monotonic()
            await asyncio.sleep(self._tick_s)  # the measurement itself: how late does it end?
            self.record(self._monotonic() - started - self._tick_s)

    def record(self, stall_s: float) -> None:
        stall_s = max(0.0, stall_s)
        phase = self.phase
        self.longest[phase] = max(self.longest[phase], stall_s)
        self._observer.loop_stall(phase, stall_s)
        if stall_s > self._warn_s:
            _log.warning("event loop stalled for %.3f s while %s", stall_s, phase)
