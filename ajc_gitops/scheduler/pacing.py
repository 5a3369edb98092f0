"""Bulk work (a million records loaded, a million tracks built) without stalling the event
loop, which the election refresh, the NATS pings and the fire loop share.

Two causes of long stalls, two tools:

* a synchronous pass over everything: ``Slices`` hands the loop back every ``SLICE_S``;
* Python's cyclic garbage collector: while millions of long-lived objects are created, every
  time they grow by a quarter it walks all of them (a full collection: ~0.25 s at 200,000
  schedules, seconds at a million). ``bulk_allocation()`` pauses it for the duration and then
  freezes what was built (``gc.freeze``: later collections skip those objects). Schedules
  and tracks hold no reference cycles, so nothing is lost by not scanning them; reference
  counting still frees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator

__all__ = ["SLICE_S", "Slices", "bulk_allocation"]

SLICE_S = 0.02
YIELD_S = 0.0005
_paused = 0  # nesting depth of bulk_allocation() (the follower and the fire loop may overlap)
_was_enabled = True
_freeze_pending = False  # an inner bulk_allocation() asked to freeze; done when the outer ends


class Slices:
    """``await slices.tick()`` after each unit of work: yields to the loop once ``slice_s``
    has passed since the last yield, and is free otherwise."""

    def __init__(self, slice_s: float = SLICE_S, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._slice_s = slice_s
        self._monotonic = monotonic
        self._end = monotonic() + slice_s
        self.yields = 0

    async def tick(self) -> None:
        if self._monotonic() > self._end:
            # Not sleep(0): that requeues us ahead of the timers falling due meanwhile (the
            # election refresh, the fire loop's wake-up), which would then wait two slices.
            await asyncio.sleep(YIELD_S)
            self.yields += 1
            self._end = self._monotonic() + self._slice_s


@contextlib.contextmanager
def bulk_allocation(*, freeze: bool = True) -> Iterator[None]:
    """No cyclic collection inside; on the way out everything alive is frozen (``freeze``:
    for what stays, like the schedule set, not for a passing snapshot)."""
    global _paused, _was_enabled, _freeze_pending
    if _paused == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        _freeze_pending = _freeze_pending or freeze
        if _paused == 0:
            if _freeze_pending:
                gc.freeze()
            _freeze_pending = False
            if _was_enabled:
                gc.enable()
