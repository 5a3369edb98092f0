"""``Store``: the connection with its bucket, read and write methods, as one class.

The methods live in one module per job (``connection.py``, ``buckets.py``, ``reads.py``,
``writes.py``), each a class on top of the connection; ``Store`` only combines them.
"""

from __future__ import annotations

from ajc_gitops.store.kv.buckets import Buckets
from ajc_gitops.store.kv.reads import Reads
from ajc_gitops.store.kv.writes import Writes

__all__ = ["Store"]


class Store(Buckets, Reads, Writes):
    """One NATS connection for the asyncjobs buckets; open once with ``Store.open()``."""

    def __repr__(self) -> str:
        return f"<Store {self.server}{' closed' if self._closed else ''}>"
