from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ajc_gitops.cli import output
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.render.problems import RENDERERS

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def run(paths: Sequence[Path], *, output_format: str, now: datetime | None = None) -> int:
    result = load_manifests(paths, now=now or datetime.now(UTC))
    output.write(RENDERERS[output_format](result))
    if result.missing_paths:
        return EXIT_USAGE
    return EXIT_INVALID if result.errors else EXIT_OK
