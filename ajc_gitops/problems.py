"""Problems are values: loaders collect every one of them and only the CLI decides what
they mean for the exit code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# Characters that end a line somewhere (terminals, CI logs, Python's splitlines): a quoted YAML
# value such as schedule: "@\n\nx" reaches Go's error text verbatim, and a file name may hold
# them too. Shown escaped, so a problem stays one line (tests/props/test_fuzz_inputs.py).
_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


def one_line(text: str) -> str:
    return _BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a manifest file; line and column are 1-based, 0 when unknown."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return one_line(self.path)
        return f"{one_line(self.path)}:{self.line}:{max(self.col, 1)}"


@dataclass(frozen=True, slots=True)
class Problem:
    location: Location
    message: str
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value}: {one_line(self.message)}"
