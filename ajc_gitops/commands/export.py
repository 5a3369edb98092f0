"""`ajc-gitops export`: live schedules as manifests, so a team can adopt what already runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ajc_gitops import output
from ajc_gitops.codec import MarkerError, decode_marker
from ajc_gitops.commands import common
from ajc_gitops.commands.options import ExportOptions
from ajc_gitops.connect import ConnectFlags
from ajc_gitops.errors import CommandError
from ajc_gitops.manifest.export import SuspendedEntry, export_schedules, render_stream, write_files
from ajc_gitops.names import MARKER_PREFIX, marker_key
from ajc_gitops.plan.suspend import suspended_schedules
from ajc_gitops.state import Snapshot
from ajc_gitops.store import Store
from ajc_gitops.sync.state import read_state


async def _records(connect: ConnectFlags) -> tuple[str, Snapshot, Snapshot]:
    async with Store.open(common.connect_options(connect)) as store:
        records, markers = await read_state(store)
        return store.server, records, markers


def _sensitive_names(markers: Snapshot) -> frozenset[str]:
    found = set()
    for key, entry in markers.live.items():
        try:
            marker = decode_marker(entry.value or b"")
        except MarkerError:
            continue  # plan reports an unreadable marker; export has nothing to keep from it
        if marker.sensitive and key == MARKER_PREFIX + marker.name:
            found.add(marker.name)
    return frozenset(found)


def run(opts: ExportOptions, *, now: datetime | None = None) -> int:
    server, records, markers = asyncio.run(_records(opts.connect))
    held = {
        name: SuspendedEntry(item.task, item.reason, item.marker_revision)
        for name, item in suspended_schedules(markers, records).items()
        if item.task is not None
    }
    result = export_schedules(
        records, opts.names, now=now or datetime.now(UTC), sensitive=_sensitive_names(markers), suspended=held
    )
    for key, why in result.skipped:
        output.error(f"warning: {server}: {key}: not exported: {why}")
    for key, note in result.warnings:
        output.error(f"warning: {server}: {key}: exported, but {note}")
    if opts.out_dir is None:
        output.write(render_stream(result))
    else:
        written = write_files(opts.out_dir, result)
        output.error(f"Exported {len(written)} schedule(s) from {server} to {opts.out_dir}/")
    unmanaged = [e.name for e in result.schedules if marker_key(e.name) not in markers.live]
    if unmanaged:
        shown = ",".join(unmanaged[:5]) + (",..." if len(unmanaged) > 5 else "")
        output.error(
            f"{len(unmanaged)} of them are not managed by ajc-gitops yet: review and commit the manifests, then "
            f"take them over with 'ajc-gitops apply <dir> --adopt {shown}' (plan first with the same flags)"
        )
    if result.missing:
        raise CommandError(
            f"{server}: no live schedule named {', '.join(result.missing)} (scheduled_tasks.<name>); "
            "check the name with 'ajc task cron list'"
        )
    return common.EXIT_OK
