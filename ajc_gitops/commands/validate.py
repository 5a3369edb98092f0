"""`ajc-gitops validate`: check manifests offline, as the Go scheduler will read them."""

from __future__ import annotations

from datetime import UTC, datetime

from ajc_gitops import output
from ajc_gitops.commands.options import ValidateOptions
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.render.problems import RENDERERS

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def run(opts: ValidateOptions, *, now: datetime | None = None) -> int:
    result = load_manifests(opts.paths, now=now or datetime.now(UTC))
    output.write(RENDERERS[opts.output_format](result))
    if result.missing_paths:
        return EXIT_USAGE
    return EXIT_INVALID if result.errors else EXIT_OK
