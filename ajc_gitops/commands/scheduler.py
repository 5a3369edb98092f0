"""`ajc-gitops scheduler NAME`: a drop-in for Go's ``ajc task cron scheduler`` (issue 4).

Flags become a ``SchedulerConfig``; logs go to stderr through stdlib logging, as text or one
JSON object per line (``--log-format json``), never with a traceback (STYLE.md "Tracebacks
... in anything a user sees").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import SchedulerOptions
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.errors import AjcError, UsageError
from ajc_gitops.gowire.durations import DurationError, parse_duration
from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.scheduler.runner import (
    SHORT_TTL_ENV,
    SchedulerConfig,
    SchedulerService,
    capture_signals,
    first_error,
    host_zone,
    run_service,
)
from ajc_gitops.status.classify import LATE_AFTER_S
from ajc_gitops.store import QueueSpec, Store, ensure_queue, task_events

__all__ = [
    "JsonFormatter",
    "TextFormatter",
    "catchup_note",
    "configure_logging",
    "parse_window",
    "run",
    "serve_and_tail",
]

LOG_FORMATS = ("text", "json")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatException(self, ei: object) -> str:
        return ""  # one line per record: the message already names the error

    def format(self, record: logging.LogRecord) -> str:
        record.exc_info = record.exc_text = None
        record.stack_info = None
        return super().format(record).replace("\n", " | ")


class JsonFormatter(logging.Formatter):
    """One object per line: time (RFC 3339 UTC), level, logger, msg (plus error, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            body["error"] = f"{type(exc).__name__}: {exc}"
        return json.dumps(body, ensure_ascii=False)


def configure_logging(log_format: str, *, debug: bool = False) -> None:
    if log_format not in LOG_FORMATS:
        raise UsageError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("nats", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not debug else logging.DEBUG)


def parse_window(text: str | None) -> datetime.timedelta | None:
    """``--catchup-window`` as a Go duration (``90s``, ``5m``, ``0`` disables catch-up)."""
    if text is None:
        return None
    try:
        ns = parse_duration(text)
    except DurationError as exc:
        raise UsageError(f"--catchup-window: {exc}") from None
    if ns < 0:
        raise UsageError("--catchup-window must not be negative")
    return datetime.timedelta(microseconds=ns // 1000)


def catchup_note(task_id: str, state: str, now_s: float) -> str:
    """For ``dev``'s task lines: `` (catch-up of HH:MM:SS)`` when a new task was made well after
    its slot, i.e. a new leader firing what nobody fired meanwhile. Our task IDs carry the slot
    second in their KSUID time (``scheduler/tasks.py``); Go's carry their creation second, so
    theirs are never marked."""
    if state != "new":
        return ""
    try:
        slot_s, _ = parse_ksuid(task_id)
    except ValueError:
        return ""
    if now_s - slot_s <= LATE_AFTER_S:
        return ""
    return f" (catch-up of {datetime.datetime.fromtimestamp(slot_s).strftime('%H:%M:%S')})"


def run(opts: SchedulerOptions, *, env: Mapping[str, str] | None = None) -> int:
    environ = os.environ if env is None else env
    name, monitor = opts.name, opts.monitor
    configure_logging(opts.log_format)
    if monitor is not None and not 0 <= monitor <= 65535:
        raise UsageError(f"--monitor must be a port number, got {monitor}")
    if opts.schedule_metrics_limit < 0:
        raise UsageError("--schedule-metrics-limit must not be negative")
    config = SchedulerConfig(
        name=name or "",
        connect=common.connect_options(opts.connect),
        monitor_port=monitor if monitor else None,  # Go: the monitor runs only when > 0
        catchup_window=parse_window(opts.catchup_window),
        schedule_series_limit=opts.schedule_metrics_limit,
        allow_short_ttl=environ.get(SHORT_TTL_ENV, "") == "1",
        zone=host_zone(dict(environ)),
    )

    async def main() -> None:
        await run_service(SchedulerService(config))

    asyncio.run(main())
    return common.EXIT_OK


async def serve_and_tail(url: str, queues: Sequence[str], *, name: str = "ajc-gitops-dev") -> None:
    """For ``dev``: run a scheduler against ``url`` and print every task_state event until
    SIGINT/SIGTERM. The schedules' queues are created first, as ``ajc queue add`` would (the
    scheduler itself never creates them, contract §1), so the tasks really get enqueued."""
    connect = ConnectOptions(servers=(url,))
    service = SchedulerService(SchedulerConfig(name, connect))

    async def tail(store: Store) -> None:
        async with contextlib.aclosing(task_events(store)) as events:
            async for e in events:
                now = datetime.datetime.now()
                error = f": {e.last_error}" if e.last_error else ""
                note = catchup_note(e.task_id, e.state, now.timestamp())
                line = f"{e.state:<11} {e.task_type} -> {e.queue}  task {e.task_id}{error}{note}"
                output.write(f"{now.strftime('%H:%M:%S')}  {line}")

    # The scheduler's own lines about leading and catching up (issue 12 item 6), on stderr.
    fire_log = logging.getLogger("ajc_gitops.scheduler.fire")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter())
    fire_log.addHandler(handler)
    fire_log.setLevel(logging.INFO)

    async with Store.open(connect) as store:
        for queue in sorted(set(queues)):
            await ensure_queue(store, QueueSpec(queue))
        output.write(
            f"Scheduler {name} is running; it fires once it wins the election (up to ~12 s, as Go's).\n"
            "Tasks appear below as they are created. Ctrl-C to stop."
        )
        with capture_signals(service.stop):
            try:
                async with asyncio.TaskGroup() as tg:
                    printer = tg.create_task(tail(store))
                    await service.run()
                    printer.cancel()
            except* AjcError as group:
                raise first_error(group) from None
