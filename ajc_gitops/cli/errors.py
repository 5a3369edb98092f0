"""The only place where exceptions become what a user sees: one line on stderr and an exit
code. Expected errors (``AjcError``) print their message; ^C exits 130; anything else is a
bug, reported in one line with a pointer to ``--debug`` for the traceback."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from ajc_gitops import output
from ajc_gitops.errors import AjcError

EXIT_INTERRUPTED = 130
EXIT_BUG = 3


@contextmanager
def error_handler(*, debug: bool) -> Iterator[None]:
    try:
        yield
    except AjcError as exc:
        output.error(f"error: {exc}")
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        output.error("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if debug:
            output.error("".join(traceback.format_exception(exc)))
        detail = str(exc).splitlines()[0] if str(exc) else ""
        output.error(
            f"error: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
            "(a bug in ajc-gitops; rerun with --debug for the traceback and report it)"
        )
        raise SystemExit(EXIT_BUG) from None
