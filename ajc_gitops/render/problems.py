"""Renderers for manifest problems: data in, text out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Literal

from ajc_gitops.manifest.load import LoadResult
from ajc_gitops.problems import Problem

ProblemFormat = Literal["text", "json", "github"]
JSON_FORMAT_VERSION = 1


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_text(result: LoadResult) -> str:
    lines = [str(problem) for problem in result.problems]
    errors = len(result.errors)
    warnings = len(result.problems) - errors
    scope = f"{_plural(result.files, 'file')}, {_plural(len(result.schedules), 'valid schedule')}"
    if errors:
        lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} ({scope})")
    else:
        lines.append(f"ok: {scope}" + (f", {_plural(warnings, 'warning')}" if warnings else ""))
    return "\n".join(lines) + "\n"


def _problem_json(problem: Problem) -> dict[str, object]:
    return {
        "file": problem.location.path,
        "line": problem.location.line,
        "col": problem.location.col,
        "severity": problem.severity.value,
        "message": problem.message,
    }


def render_json(result: LoadResult) -> str:
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "valid": not result.errors,
        "files": result.files,
        "schedules": len(result.schedules),
        "errors": len(result.errors),
        "warnings": len(result.problems) - len(result.errors),
        "problems": [_problem_json(p) for p in result.problems],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    # GitHub workflow commands: %, CR and LF are escaped in the message...
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # ...and ':' and ',' too inside properties such as file=.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(problem: Problem) -> str:
    where = [f"file={_escape_property(problem.location.path)}"]
    if problem.location.line:
        where.append(f"line={problem.location.line}")
        where.append(f"col={max(problem.location.col, 1)}")
    return f"::{problem.severity.value} {','.join(where)}::{_escape_data(problem.message)}"


def render_github(result: LoadResult) -> str:
    lines = [github_annotation(p) for p in result.problems]
    lines.append(render_text(result).splitlines()[-1])
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[LoadResult], str]] = {
    "text": render_text,
    "json": render_json,
    "github": render_github,
}
