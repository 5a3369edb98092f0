"""The NATS connection flags, defined once and added to every command that talks to NATS.

``@connection_options`` appends the flags to a typer command's signature and hands the command
one ``ConnectFlags`` value as its ``connect`` argument. Environment variables (``NATS_URL``,
``NATS_CONTEXT``, ``NATS_USER``...) are read later by ``connect.resolve_connect_options`` and not by
typer, so an error can say whether a value came from a flag, the environment or a context.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from ajc_gitops.connect.options import ConnectFlags

F = TypeVar("F", bound=Callable[..., Any])
_PANEL = "NATS connection"

# (ConnectFlags field, typer parameter). Names follow the nats CLI (natscli main.go).
_OPTIONS: tuple[tuple[str, Any], ...] = (
    (
        "server",
        Annotated[
            str | None,
            typer.Option(
                "--server",
                "-s",
                metavar="URL",
                help="NATS server URL(s), comma separated (env NATS_URL).",
                rich_help_panel=_PANEL,
            ),
        ],
    ),
    (
        "context",
        Annotated[
            str | None,
            typer.Option(
                "--context", metavar="NAME", help="NATS CLI context to use (env NATS_CONTEXT).", rich_help_panel=_PANEL
            ),
        ],
    ),
    (
        "creds",
        Annotated[
            str | None,
            typer.Option(
                "--creds", metavar="FILE", help="User credentials file (env NATS_CREDS).", rich_help_panel=_PANEL
            ),
        ],
    ),
    (
        "nkey",
        Annotated[
            str | None,
            typer.Option("--nkey", metavar="FILE", help="NKey seed file (env NATS_NKEY).", rich_help_panel=_PANEL),
        ],
    ),
    (
        "user",
        Annotated[
            str | None,
            typer.Option(
                "--user", help="Username, or a token when no password is given (env NATS_USER).", rich_help_panel=_PANEL
            ),
        ],
    ),
    (
        "password",
        Annotated[
            str | None,
            typer.Option("--password", help="Password (env NATS_PASSWORD).", rich_help_panel=_PANEL),
        ],
    ),
    (
        "token",
        Annotated[str | None, typer.Option("--token", help="Authentication token.", rich_help_panel=_PANEL)],
    ),
    (
        "tls_cert",
        Annotated[
            str | None,
            typer.Option(
                "--tlscert", metavar="FILE", help="TLS client certificate (env NATS_CERT).", rich_help_panel=_PANEL
            ),
        ],
    ),
    (
        "tls_key",
        Annotated[
            str | None,
            typer.Option("--tlskey", metavar="FILE", help="TLS client key (env NATS_KEY).", rich_help_panel=_PANEL),
        ],
    ),
    (
        "tls_ca",
        Annotated[
            str | None,
            typer.Option(
                "--tlsca", metavar="FILE", help="TLS CA certificate(s) (env NATS_CA).", rich_help_panel=_PANEL
            ),
        ],
    ),
    (
        "tls_first",
        Annotated[
            bool,
            typer.Option("--tls-first", help="TLS handshake before the NATS protocol.", rich_help_panel=_PANEL),
        ],
    ),
    (
        "js_domain",
        Annotated[
            str | None,
            typer.Option("--js-domain", metavar="DOMAIN", help="JetStream domain.", rich_help_panel=_PANEL),
        ],
    ),
    (
        "timeout_s",
        Annotated[
            float | None,
            typer.Option(
                "--timeout",
                metavar="SECONDS",
                help="Connect and request timeout in seconds (default 5).",
                rich_help_panel=_PANEL,
            ),
        ],
    ),
)
_DEFAULTS: dict[str, Any] = {"tls_first": False}
_PREFIX = "nats_"  # parameter names in the command signature, apart from the command's own


def _resolved(command: Callable[..., Any], param: inspect.Parameter) -> Any:
    # ``from __future__ import annotations`` leaves strings; evaluate them as inspect's
    # ``eval_str`` would, except ``connect``, whose type the CLI module imports only for mypy
    # (importing connect.py would slow `validate`'s start, the pre-commit budget).
    annotation = param.annotation
    return eval(annotation, command.__globals__) if isinstance(annotation, str) else annotation


def connection_options(command: F) -> F:
    """Add the connection flags to ``command``, which receives them as ``connect: ConnectFlags``."""
    own = inspect.signature(command)
    params = [p.replace(annotation=_resolved(command, p)) for name, p in own.parameters.items() if name != "connect"]
    extra = [
        inspect.Parameter(_PREFIX + name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS.get(name), annotation=ann)
        for name, ann in _OPTIONS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:


        values = {name: kwargs.pop(_PREFIX + name) for name, _ in _OPTIONS}
        # --tls-first is a plain flag: "not given" must let a context's tls_first apply.
        values["tls_first"] = True if values["tls_first"] else None
        return command(*args, connect=ConnectFlags(**values), **kwargs)

    del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one
    every = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in (*params, *extra)]
    wrapper.__signature__ = own.replace(parameters=every, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in every} | {"return": None}
    return typing.cast(F, wrapper)
