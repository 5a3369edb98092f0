"""One module per subcommand, each with ``run(options) -> exit code``; ``COMMANDS`` is the one
table that maps an options type to its module. A command's module is imported only when it runs,
so ``validate`` (a pre-commit hook) never pays for NATS or the scheduler."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import cast

from ajc_gitops.commands.options import (
    ApplyOptions,
    BackfillOptions,
    CommandOptions,
    DevOptions,
    ExportOptions,
    NextOptions,
    PlanOptions,
    SchedulerOptions,
    StatusOptions,
    TriggerOptions,
    ValidateOptions,
)

__all__ = ["COMMANDS", "run_command"]

COMMANDS: Mapping[type[CommandOptions], str] = {
    ValidateOptions: "ajc_gitops.commands.validate",
    NextOptions: "ajc_gitops.commands.next",
    PlanOptions: "ajc_gitops.commands.plan",
    ApplyOptions: "ajc_gitops.commands.apply",
    ExportOptions: "ajc_gitops.commands.export",
    DevOptions: "ajc_gitops.commands.dev",
    SchedulerOptions: "ajc_gitops.commands.scheduler",
    StatusOptions: "ajc_gitops.commands.status",
    TriggerOptions: "ajc_gitops.commands.trigger",
    BackfillOptions: "ajc_gitops.commands.backfill",
}


def run_command(options: CommandOptions) -> int:
    """Run the command ``options`` belongs to; its exit code."""
    module = importlib.import_module(COMMANDS[type(options)])
    run = cast(Callable[[CommandOptions], int], module.run)
    return run(options)
