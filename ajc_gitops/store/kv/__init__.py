"""The KV core: one NATS connection (``connection``), the asyncjobs buckets (``buckets``),
complete reads (``reads``) and revision-guarded writes (``writes``), combined into ``Store``
(``client``), with nats-py's errors mapped to ours in one place (``errors``).

The asyncjobs adapters (``store/asyncjobs/``) build on ``Store``'s public members only:
``client``, ``guard``, ``api_request``, ``api_prefix``, ``timeout``, ``error_mark`` /
``errors_since`` and ``stream_exists``.
"""

from __future__ import annotations

from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import map_nats_errors

__all__ = ["Store", "map_nats_errors"]
