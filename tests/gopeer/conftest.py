"""Fixtures of the Go-peer tests: the pinned Go ``ajc`` built once, one server per module.

The build runs once the tests are collected, before any test starts, so its first-time cost
(minutes) is not charged to one test's timeout. Without Go the tests skip with one reason;
``AJC_GITOPS_REQUIRE_GO_PEER=1`` (set by ``.ci/run``) makes that a failure, so CI cannot pass
without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedServer, start_server
from tests.gopeer import gobuild
from tests.gopeer.peer import Ajc

REQUIRE_ENV = "AJC_GITOPS_REQUIRE_GO_PEER"
HERE = Path(__file__).parent
_BUILT = pytest.StashKey["gobuild.Built | str"]()


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not any(HERE in item.path.parents for item in session.items):
        return
    try:
        built: gobuild.Built | str = gobuild.build(gobuild.AJC)
    except gobuild.GoUnavailable as exc:
        built = str(exc)
    session.config.stash[_BUILT] = built
    if isinstance(built, gobuild.Built) and not built.cached:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"built Go ajc {gobuild.AJC.version} in {built.seconds:.0f}s: {built.path}")


@pytest.fixture(scope="session")
def go_ajc(pytestconfig: pytest.Config) -> Path:
    """Path of the pinned Go ``ajc`` binary."""
    built = pytestconfig.stash.get(_BUILT, None)
    if built is None:  # collected outside pytest_collection_finish's view (should not happen)
        try:
            built = gobuild.build(gobuild.AJC)
        except gobuild.GoUnavailable as exc:
            built = str(exc)
    if isinstance(built, str):
        reason = f"Go-peer tests need the Go ajc: {built}"
        if required():
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1 forbids skipping)", pytrace=False)
        pytest.skip(reason)
    return built.path


@pytest.fixture(scope="module")
def go_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One server for a module: its tests use their own schedule, queue and task type names."""
    server = start_server(work_dir=tmp_path_factory.mktemp("gopeer-nats"), server_name="ajc-gopeer")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def ajc(go_ajc: Path, go_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ajc]:
    peer = Ajc(go_ajc, go_server.url, tmp_path_factory.mktemp("gopeer-ajc"))
    try:
        yield peer
    finally:
        peer.stop_all()
