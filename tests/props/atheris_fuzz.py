"""Coverage-guided fuzzing with atheris (libFuzzer), beside the hypothesis properties.

Not collected by pytest (no ``test_`` prefix) and not a dependency: ``pip install atheris``,
then ``python tests/props/atheris_fuzz.py TARGET -max_total_time=60 [CORPUS_DIR]`` with TARGET
one of manifest, record, plan, cron (for plan, seed CORPUS_DIR with a ``plan --out`` file).
Same property as test_fuzz_inputs.py: a result or our own one-line error; anything else
crashes the fuzzer with the input saved as ``crash-*``. docs/reliability.md has the figures of
the last run.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["ajc_gitops"]):
    from ajc_gitops import codec
    from ajc_gitops.errors import PlanFileError
    from ajc_gitops.gowire.cron import CronError, parse_standard
    from ajc_gitops.manifest.yamlload import load_documents
    from ajc_gitops.plan.planfile import read_plan
    from ajc_gitops.problems import Location, Problem
    from ajc_gitops.rules import parse_schedule

_FILE = Path(tempfile.mkdtemp(prefix="ajc-atheris-")) / "m.yaml"


def _one_line(text: str) -> None:
    # \n and \r are what terminals and CI logs break on. Python's splitlines also splits on
    # \x1c-\x1e, which Go's cron errors may quote verbatim from the input (found here).
    if "\n" in text or "\r" in text:
        raise AssertionError(f"not one line: {text!r}")


def manifest(data: bytes) -> None:
    _FILE.write_bytes(data)
    _, problems = load_documents(_FILE, str(_FILE))
    for problem in problems:
        _one_line(str(problem))


def record(data: bytes) -> None:
    result = codec.decode_scheduled_task(data)
    if result.error is not None:
        _one_line(str(result.error))
    else:  # what Go decoded, codec writes back and decodes to the same task
        again = codec.decode_scheduled_task(codec.encode_scheduled_task(result.task))
        if again.error is not None:
            raise AssertionError(f"re-encoded record does not decode: {again.error}")


def plan(data: bytes) -> None:
    try:
        read_plan(data, "p")
    except PlanFileError as exc:
        _one_line(str(exc))


def cron(data: bytes) -> None:
    # Go's error text quotes the input verbatim (a schedule holding "\n" included), so check it
    # where a user sees it: as a validate problem.
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(200)
    try:
        parse_standard(text)
    except CronError:
        _, message = parse_schedule(text)
        _one_line(str(Problem(Location("m.yaml", 1, 1), message or "")))


TARGETS: dict[str, Callable[[bytes], None]] = {"manifest": manifest, "record": record, "plan": plan, "cron": cron}

if __name__ == "__main__":
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()
