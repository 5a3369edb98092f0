"""The cron fields as robfig/cron encodes them: bounds, month and weekday names, and the
bit sets a parsed field becomes (bit 63 = the star flag, cron_semantics.md §3)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DOM",
    "DOW",
    "HOURS",
    "MINUTES",
    "MONTHS",
    "SECONDS",
    "STAR_BIT",
    "Bounds",
    "all_bits",
    "get_bits",
    "valid_bits",
]

STAR_BIT = 1 << 63
_UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

SECONDS = Bounds(0, 59)
MINUTES = Bounds(0, 59)
HOURS = Bounds(0, 23)
DOM = Bounds(1, 31)
MONTHS = Bounds(1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)})
DOW = Bounds(0, 6, {name: i for i, name in enumerate(_DOW_NAMES)})


def get_bits(low: int, high: int, step: int) -> int:
    if step == 1:
        return ((1 << (high + 1)) - 1) & ~((1 << low) - 1) & _UINT64_MAX
    bits = 0
    for i in range(low, high + 1, step):
        bits |= 1 << i
    return bits


def all_bits(bounds: Bounds) -> int:
    return get_bits(bounds.low, bounds.high, 1) | STAR_BIT


def valid_bits(bounds: Bounds) -> int:
    return get_bits(bounds.low, bounds.high, 1)
