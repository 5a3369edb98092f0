"""A JetStream cluster of ``nats-server`` processes routed over loopback, for the fault tests
(a node stopped, paused or restarted under plan, apply and the scheduler)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from ajc_gitops.embedded.server import (
    DEFAULT_READY_TIMEOUT_S,
    LOG_TAIL_LINES,
    ClusterSpec,
    EmbeddedServer,
    find_nats_server,
    free_ports,
    make_work_dir,
    with_port_retry,
)

__all__ = ["EmbeddedCluster", "start_cluster"]


class EmbeddedCluster:
    """A JetStream cluster of nats-server processes routed over loopback."""

    def __init__(self, servers: Sequence[EmbeddedServer], work_dir: Path, owns_work_dir: bool):
        self.servers: tuple[EmbeddedServer, ...] = tuple(servers)
        self.work_dir = work_dir
        self._owns_work_dir = owns_work_dir

    @property
    def urls(self) -> str:
        """All client URLs comma-joined, the form ``NATS_URL`` and ``--server`` take."""
        return ",".join(s.url for s in self.servers)

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        for server in self.servers:
            server.wait_ready(max(deadline - time.monotonic(), 0.1))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def close(self) -> None:
        self.stop()
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(f"--- {s.server_name} ---\n{s.log_tail(lines)}" for s in self.servers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_cluster(
    size: int = 3,
    *,
    work_dir: Path | None = None,
    extra_config: str = "",
    cluster_name: str = "ajc-gitops",
    timeout: float = 30.0,
) -> EmbeddedCluster:
    """Start ``size`` JetStream nodes (each its own store dir and server_name), wait for all.

    All nodes are spawned before any readiness wait: a meta leader needs a quorum.
    """
    if size < 1:
        raise ValueError("cluster size must be at least 1")
    binary = find_nats_server()

    def attempt() -> EmbeddedCluster:
        wd, owned = make_work_dir(work_dir, "ajc-nats-cluster-")
        ports = free_ports(3 * size)
        route_ports = tuple(ports[2 * size :])
        servers = [
            EmbeddedServer(
                binary=binary,
                work_dir=wd,
                store_dir=wd / f"n{i + 1}" / "store",
                client_port=ports[i],
                monitor_port=ports[size + i],
                server_name=f"n{i + 1}",
                extra_config=extra_config,
                cluster=ClusterSpec(cluster_name, route_ports[i], route_ports),
            )
            for i in range(size)
        ]
        cluster = EmbeddedCluster(servers, wd, owned)
        try:
            for server in servers:
                server.spawn()
            cluster.wait_ready(timeout)
        except BaseException:
            cluster.stop()  # the work dir stays: the error names its logs
            raise
        return cluster

    return with_port_retry(attempt)
