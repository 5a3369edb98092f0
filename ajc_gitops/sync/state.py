"""What plan, apply and export read: the schedule records and the ownership markers, from
one read of the configuration bucket; and the queues that exist."""

from __future__ import annotations

from ajc_gitops.errors import ConnectError, StoreError
from ajc_gitops.names import CONFIG_BUCKET, MARKER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.state import Snapshot
from ajc_gitops.store import Store, queue_names

__all__ = ["read_queues", "read_state"]


async def read_state(store: Store, bucket: str = CONFIG_BUCKET) -> tuple[Snapshot, Snapshot]:
    """The records and the ownership markers; a missing bucket reads as empty (apply creates it)."""
    if not await store.bucket_exists(bucket):
        return Snapshot.build(SCHEDULE_PREFIX, []), Snapshot.build(MARKER_PREFIX, [])
    # One read of the bucket: records and markers from the same moment, as new as the leader.
    records, markers = await store.snapshots((SCHEDULE_PREFIX, MARKER_PREFIX), bucket=bucket)
    return records, markers


async def read_queues(store: Store) -> tuple[frozenset[str] | None, str | None]:
    """The queues that exist, or None and why they could not be listed: a user allowed to
    plan but not to list streams still gets a plan, with a warning instead of the check."""
    try:
        return await queue_names(store), None
    except ConnectError:
        raise
    except StoreError as exc:
        return None, str(exc)
