"""Command-line interface: flags into plain arguments, then ``commands/*``; no logic here.
Heavy modules are imported inside each command so `validate` starts fast as a pre-commit hook."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ajc_gitops import __version__
from ajc_gitops.cli.errors import error_handler

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
    from ajc_gitops.commands import validate as command

    raise typer.Exit(command.run(paths or [Path(".")], output_format=output_format.value))


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
    from ajc_gitops.commands import next as command

    raise typer.Exit(command.run(schedule, after=after, count=count, output_format=output_format.value))


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("AJC_GITOPS_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    with error_handler(debug=_debug_requested(args)):
        app(args=args, prog_name="ajc-gitops")
