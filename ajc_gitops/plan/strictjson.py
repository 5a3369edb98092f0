"""JSON as a saved plan must be: no repeated key, no NaN or Infinity, and no integer longer than
a revision (Python's ``int()`` refuses past 4,300 digits with a message of its own)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["strict_loads"]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _integer(literal: str) -> int:
    # Every integer in a plan is a revision or the format version: 20 digits at most. A
    # longer one is refused before int(), which raises past 4,300 digits in Python's words.
    if len(literal) > 21:
        raise ValueError(f"an integer of {len(literal):,} characters, longer than any revision")
    return int(literal)


def strict_loads(text: str) -> Any:
    """``json.loads`` with those rules; raises ``json.JSONDecodeError``, ``ValueError`` (a rule)
    or ``RecursionError`` (nested too deeply)."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant, parse_int=_integer)
