"""Suite-wide fixtures and helpers.

Sections: hypothesis profile, waiting helpers, real nats-server fixtures. Add new
fixtures (``run_cli``, ``clock``...) in their own section; keep each one small.

Servers come from ``ajc_gitops.embedded`` (the code ``ajc-gitops dev`` uses), on free
loopback ports with temp store dirs, stopped by PID. One fresh server per test, because
asyncjobs bucket names are fixed. When a test fails, the logs of the servers it used are
attached to its report (section "nats-server log").
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from ajc_gitops.embedded import EmbeddedCluster, EmbeddedServer, start_cluster, start_server
from tests import waiting

# -- hypothesis ----------------------------------------------------------------------------

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
# The long fuzzing run (README "Long runs"): HYPOTHESIS_PROFILE=long.
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- long runs -------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` means one thing suite-wide: a long run, made only when asked for (``-m slow``,
    or ``AJC_LONG=1``). The default run, which CI makes, holds a short variant of each proof."""
    if "slow" in (config.getoption("markexpr") or "") or os.environ.get("AJC_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long run: select it with -m slow (README 'Long runs')")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


# -- async tests ---------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests in a fresh event loop (no pytest-asyncio dependency)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


# -- waiting on conditions (never sleep for an event) --------------------------------------


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    return waiting.wait_until


@pytest.fixture
def async_wait_until() -> Callable[..., Any]:
    return waiting.async_wait_until


# -- nats-server ---------------------------------------------------------------------------

_SERVERS_KEY = pytest.StashKey[list[EmbeddedServer]]()


def _track(request: pytest.FixtureRequest, *servers: EmbeddedServer) -> None:
    request.node.stash.setdefault(_SERVERS_KEY, []).extend(servers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    servers = item.stash.get(_SERVERS_KEY, [])
    if report.failed and servers:
        for server in servers:
            report.sections.append((f"nats-server log ({server.server_name}, {report.when})", server.log_tail(80)))
    return report


@pytest.fixture
def nats_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A fresh single JetStream server for this test."""
    server = start_server(work_dir=tmp_path / "nats", server_name="ajc-test")
    _track(request, server)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def nats_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedCluster]:
    """A fresh 3-node JetStream cluster for this test."""
    cluster = start_cluster(3, work_dir=tmp_path / "nats-cluster")
    _track(request, *cluster.servers)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def nats_server_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., EmbeddedServer]]:
    """Start extra servers with custom config (auth, no JetStream...); all stopped after."""
    started: list[EmbeddedServer] = []

    def factory(**kwargs: Any) -> EmbeddedServer:
        name = kwargs.pop("server_name", f"ajc-test-{len(started) + 1}")
        server = start_server(work_dir=tmp_path / name, server_name=name, **kwargs)
        started.append(server)
        _track(request, server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.close()
