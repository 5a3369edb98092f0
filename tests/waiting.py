"""Waiting on a condition with a timeout, never sleeping for an event: the ``wait_until`` and
``async_wait_until`` fixtures of conftest.py, importable by helpers that are not tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import pytest

T = TypeVar("T")

DEFAULT_WAIT_S = 10.0
POLL_S = 0.01


def _describe(predicate: Callable[..., Any]) -> str:
    return getattr(predicate, "__qualname__", None) or repr(predicate)


def wait_until(
    predicate: Callable[[], T], timeout: float = DEFAULT_WAIT_S, what: str = "", interval: float = POLL_S
) -> T:
    """Poll ``predicate`` every ``interval`` until it returns a truthy value (returned) or fail
    after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or _describe(predicate)}")
        time.sleep(interval)


async def async_wait_until(
    predicate: Callable[[], T | Awaitable[T]], timeout: float = DEFAULT_WAIT_S, what: str = ""
) -> T:
    """Async twin: ``predicate`` may be sync or async; the loop keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or _describe(predicate)}")
        await asyncio.sleep(POLL_S)
