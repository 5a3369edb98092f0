"""Command-line interface: flags into a ``commands.options`` value, run through the one
command table (``commands.COMMANDS``), which imports a command's module only when it runs, so
`validate` starts fast as a pre-commit hook. No logic here."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ajc_gitops import __version__
from ajc_gitops.cli.errors import error_handler
from ajc_gitops.cli.options import connection_options
from ajc_gitops.commands import run_command
from ajc_gitops.commands.options import (
    ApplyOptions,
    BackfillOptions,
    DevOptions,
    ExportOptions,
    NextOptions,
    PlanOptions,
    SchedulerOptions,
    StatusOptions,
    TriggerOptions,
    ValidateOptions,
)
from ajc_gitops.connect.options import ConnectFlags
from ajc_gitops.scheduler.metric_names import DEFAULT_SCHEDULE_SERIES_LIMIT

app = typer.Typer(
    name="ajc-gitops",
    help="Schedules as code for asyncjobs: validate, plan and apply NATS JetStream scheduled tasks from Git.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class ProblemFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"


class TimesFormat(StrEnum):
    text = "text"
    json = "json"


class PlanFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"
    github = "github"


_PATHS_HELP = "Manifest files or directories (default: current directory)."
Prune = Annotated[bool, typer.Option("--prune", help="Delete managed schedules that are no longer in the manifests.")]
Adopt = Annotated[
    list[str] | None,
    typer.Option(
        "--adopt",
        metavar="NAME",
        help="Take over a schedule made outside ajc-gitops (repeat, or a comma list).",
        show_default=False,
    ),
]
DetailedExitcode = Annotated[
    bool,
    typer.Option(
        "--detailed-exitcode",
        help="Exit 0 when there are no changes, 2 when there are (plan) or were (apply), 1 on error.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ajc-gitops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", envvar="AJC_GITOPS_DEBUG", help="Show tracebacks of unexpected errors.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Schedules as code for asyncjobs."""


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Manifest files or directories (default: current directory).", show_default=False),
    ] = None,
    output_format: Annotated[ProblemFormat, typer.Option("--format", "-o", help="Output format.")] = ProblemFormat.text,
) -> None:
    """Check schedule manifests offline: schema, cron, names, deadlines, duplicates."""
    raise typer.Exit(run_command(ValidateOptions(tuple(paths or [Path(".")]), output_format.value)))


@app.command("next")
def next_(
    schedule: Annotated[
        str,
        typer.Argument(help='A schedule, e.g. "0 0 1 * *", "@every 10m" or "CRON_TZ=Europe/Berlin 0 9 * * mon-fri".'),
    ],
    after: Annotated[str | None, typer.Option("--from", help="Start time, RFC3339 (default: now).")] = None,
    count: Annotated[int, typer.Option("--count", "-n", help="How many fire times to show.")] = 5,
    output_format: Annotated[TimesFormat, typer.Option("--format", "-o", help="Output format.")] = TimesFormat.text,
) -> None:
    """Show when a schedule fires next, exactly as the Go scheduler computes it (UTC host)."""
    raise typer.Exit(run_command(NextOptions(schedule, after, count, output_format.value)))


@app.command()
@connection_options
def plan(
    paths: Annotated[list[Path] | None, typer.Argument(help=_PATHS_HELP, show_default=False)] = None,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Save the plan for 'apply FILE'.", show_default=False)
    ] = None,
    output_format: Annotated[PlanFormat, typer.Option("--format", "-o", help="Output format.")] = PlanFormat.text,
    prune: Prune = False,
    adopt: Adopt = None,
    detailed_exitcode: DetailedExitcode = False,
    *,
    connect: ConnectFlags,
) -> None:
    """Show what apply would change in the live KV bucket (create, change, delete, drift)."""
    options = PlanOptions(
        paths=tuple(paths or [Path(".")]),
        connect=connect,
        out=out,
        output_format=output_format.value,
        prune=prune,
        adopt=tuple(adopt or ()),
        detailed_exitcode=detailed_exitcode,
    )
    raise typer.Exit(run_command(options))


@app.command()
@connection_options
def apply(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Manifest files or directories, or one saved plan file (a name not ending in .yaml/.yml).",
            show_default=False,
        ),
    ] = None,
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Apply without asking (CI).")] = False,
    prune: Prune = False,
    adopt: Adopt = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Allow a plan that deletes every managed schedule.")
    ] = False,
    detailed_exitcode: DetailedExitcode = False,
    replicas: Annotated[int, typer.Option("--replicas", help="Replicas for buckets apply has to create.")] = 1,
    memory: Annotated[bool, typer.Option("--memory", help="Memory storage for buckets apply has to create.")] = False,
    *,
    connect: ConnectFlags,
) -> None:
    """Apply the manifests (after showing the plan and asking), or exactly a saved plan."""
    options = ApplyOptions(
        paths=tuple(paths or [Path(".")]),
        connect=connect,
        auto_approve=auto_approve,
        prune=prune,
        adopt=tuple(adopt or ()),
        allow_empty=allow_empty,
        detailed_exitcode=detailed_exitcode,
        replicas=replicas,
        memory=memory,
    )
    raise typer.Exit(run_command(options))


@app.command()
@connection_options
def export(
    names: Annotated[
        list[str] | None, typer.Argument(help="Schedules to export (default: all).", show_default=False)
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir", metavar="DIR", help="Write one NAME.yaml per schedule here (default: stdout).", show_default=False
        ),
    ] = None,
    *,
    connect: ConnectFlags,
) -> None:
    """Write live schedules as manifests (export, then plan: no changes)."""
    raise typer.Exit(run_command(ExportOptions(tuple(names or ()), connect, out_dir)))


@app.command()
def dev(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Manifest files or directories (default: examples/schedules/).", show_default=False),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Stop after apply and the second plan: no scheduler (tests, CI).")
    ] = False,
) -> None:
    """Validate, plan and apply on an embedded nats-server (store in .ajc-gitops/), plan again, then
    run a scheduler and show the tasks it creates until Ctrl-C."""
    raise typer.Exit(run_command(DevOptions(tuple(paths or ()), once)))


class LogFormat(StrEnum):
    text = "text"
    json = "json"


@app.command()
@connection_options
def scheduler(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            envvar="AJC_SCHEDULER_NAME",
            help="This member's name in the leader election, unique in the group (env AJC_SCHEDULER_NAME).",
            show_default=False,
        ),
    ] = None,
    monitor: Annotated[
        int | None,
        typer.Option(
            "--monitor", metavar="PORT", help="Serve /metrics, /healthz and /readyz on this port.", show_default=False
        ),
    ] = None,
    log_format: Annotated[LogFormat, typer.Option("--log-format", help="Log format on stderr.")] = LogFormat.text,
    catchup_window: Annotated[
        str | None,
        typer.Option(
            "--catchup-window",
            metavar="DURATION",
            help="How far back a new leader fires missed slots, e.g. 90s or 10m; 0 disables "
            "(default: the schedule's deadline, else 5m).",
            show_default=False,
        ),
    ] = None,
    schedule_metrics_limit: Annotated[
        int,
        typer.Option(
            "--schedule-metrics-limit",
            metavar="N",
            help="Export the per-schedule series (last/next fire, period) only while leading at most N "
            "schedules: a million would be three million series, ~90 MB a scrape.",
        ),
    ] = DEFAULT_SCHEDULE_SERIES_LIMIT,
    *,
    connect: ConnectFlags,
) -> None:
    """Run a leader-electing scheduler for the stored schedules: a drop-in for `ajc task cron scheduler`."""
    options = SchedulerOptions(name, connect, monitor, log_format.value, catchup_window, schedule_metrics_limit)
    raise typer.Exit(run_command(options))


class StatusFormat(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class StatusRead(StrEnum):
    id = "id"
    stream = "stream"


@app.command()
@connection_options
def status(
    names: Annotated[
        list[str] | None, typer.Argument(help="Schedules to show (default: all).", show_default=False)
    ] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="DURATION", help="Show the slots due in this window, e.g. 6h.")
    ] = "24h",
    output_format: Annotated[StatusFormat, typer.Option("--format", "-o", help="Output format.")] = StatusFormat.text,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            metavar="WHAT",
            help="Exit 3 when any of these is found: missed, failed, unknown (repeat, or a comma list).",
            show_default=False,
        ),
    ] = None,
    scan_limit: Annotated[
        int,
        typer.Option(
            "--scan-limit", metavar="N", help="Read at most N task records to match tasks a Go leader created."
        ),
    ] = 50_000,
    read: Annotated[
        StatusRead,
        typer.Option(
            "--read",
            help="How the slots' tasks are read: id = one lookup per slot; stream = one pass over the task "
            "records written in the window, then a lookup for any slot it did not meet (same answer; faster, "
            "and ~10x less server CPU, when the window's tasks are most of what the stream holds since then).",
        ),
    ] = StatusRead.id,
    *,
    connect: ConnectFlags,
) -> None:
    """Show each schedule's state, next fires, and what became of its slots (read-only)."""
    options = StatusOptions(
        tuple(names or ()), connect, since, output_format.value, tuple(fail_on or ()), scan_limit, read.value
    )
    raise typer.Exit(run_command(options))


ScheduleName = Annotated[str, typer.Argument(metavar="NAME", help="The schedule (its scheduled_tasks.NAME key).")]


@app.command()
@connection_options
def trigger(name: ScheduleName, *, connect: ConnectFlags) -> None:
    """Create one task of a schedule now, exactly as the scheduler would (a manual fire)."""
    raise typer.Exit(run_command(TriggerOptions(name, connect)))


@app.command()
@connection_options
def backfill(
    name: ScheduleName,
    start: Annotated[str, typer.Option("--from", metavar="RFC3339", help="First instant of the range (included).")],
    end: Annotated[str, typer.Option("--to", metavar="RFC3339", help="Last instant of the range (included).")],
    auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Create without asking (CI).")] = False,
    max_slots: Annotated[
        int, typer.Option("--max-slots", metavar="N", help="Refuse a range holding more slots than this.")
    ] = 1000,
    scan_limit: Annotated[
        int,
        typer.Option(
            "--scan-limit", metavar="N", help="Read at most N task records to find tasks a Go leader created."
        ),
    ] = 50_000,
    *,
    connect: ConnectFlags,
) -> None:
    """Create the task of every slot in a past range that has none, each under the slot's own ID."""
    raise typer.Exit(run_command(BackfillOptions(name, start, end, connect, auto_approve, max_slots, scan_limit)))


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("AJC_GITOPS_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    with error_handler(debug=_debug_requested(args)):
        app(args=args, prog_name="ajc-gitops")
