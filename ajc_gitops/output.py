"""The one way to write to the terminal: results to stdout, diagnostics to stderr."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def use_color(stream: TextIO) -> bool:
    # NO_COLOR (no-color.org) wins; otherwise colour only on a terminal.
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write(text: str) -> None:
    """A result, for stdout; a trailing newline is added when missing."""
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stdout.flush()


def error(message: str) -> None:
    """One diagnostic line for stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()
