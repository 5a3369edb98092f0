"""Where and how to connect, resolved as the ``nats`` and ``ajc`` CLIs do (``options``), from
server URLs (``urls``) and NATS CLI contexts (``context``). Pure and synchronous: files are
read, sockets never opened; secrets never appear in a ``repr`` or a message."""

from __future__ import annotations

from ajc_gitops.connect.context import context_dir, load_context
from ajc_gitops.connect.options import (
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT_S,
    ConnectFlags,
    ConnectOptions,
    resolve_connect_options,
)
from ajc_gitops.connect.urls import client_servers, redact_url

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_TIMEOUT_S",
    "ConnectFlags",
    "ConnectOptions",
    "client_servers",
    "context_dir",
    "load_context",
    "redact_url",
    "resolve_connect_options",
]
