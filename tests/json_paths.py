"""Every path into a JSON document, and a copy with the value at one path replaced: how the
plan-file properties damage a valid plan one field at a time."""

from __future__ import annotations

import json
from typing import Any


def json_paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path (keys and list indexes) into ``value``, the empty path first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += json_paths(item, (*prefix, index))
    return found


def replaced(document: object, path: tuple[object, ...], value: object) -> Any:
    """A deep copy of ``document`` with the value at a non-empty ``path`` set to ``value``."""
    copy: Any = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy
