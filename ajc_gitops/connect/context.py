"""NATS CLI contexts, read as jsm.go's ``natscontext`` does: the selected name (``--context``,
``NATS_CONTEXT``, or ``$XDG_CONFIG_HOME/nats/context.txt``) and its settings file
``$XDG_CONFIG_HOME/nats/context/<name>.json`` (``~/.config`` without XDG_CONFIG_HOME), with
``~`` and ``$VAR`` expanded in its paths. Every problem is one ``ConfigError`` naming the file."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ajc_gitops.errors import ConfigError

__all__ = ["NatsContext", "context_dir", "expand_path", "load_context", "selected_context"]


_CONTEXT_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
_ENV_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def context_dir(env: Mapping[str, str], config_home: Path | None = None) -> Path:
    """``$XDG_CONFIG_HOME/nats`` (natscontext ``parentDir``), default ``~/.config/nats``."""
    if config_home is None:
        xdg = env.get("XDG_CONFIG_HOME", "")
        config_home = Path(xdg) if xdg else _home(env) / ".config"
    return config_home / "nats"


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def expand_path(value: str, env: Mapping[str, str]) -> Path:
    """``~`` and ``$VAR``/``${VAR}`` from ``env``; unknown variables stay as written."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    expanded = _ENV_VAR_RE.sub(sub, value)
    if expanded == "~" or expanded.startswith("~/"):
        expanded = str(_home(env)) + expanded[1:]
    return Path(expanded)


@dataclass(frozen=True, slots=True)
class NatsContext:
    name: str
    path: Path
    values: Mapping[str, str | bool]


_CONTEXT_STRING_FIELDS = (
    "url",
    "user",
    "password",
    "token",
    "creds",
    "nkey",
    "cert",
    "key",
    "ca",
    "jetstream_domain",
    "jetstream_api_prefix",
    "inbox_prefix",
)


def selected_context(flag: str | None, env: Mapping[str, str], base: Path) -> tuple[str, str] | None:
    """(name, where it came from) or None when no context is chosen."""
    if flag:
        return flag, "--context"
    if env.get("NATS_CONTEXT"):
        return env["NATS_CONTEXT"], "NATS_CONTEXT"
    selection = base / "context.txt"
    try:
        name = selection.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{selection}: cannot read the selected NATS context ({_reason(exc)}); "
            "fix the file or select one with 'nats context select'"
        ) from exc
    return (name, str(selection)) if name else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def load_context(name: str, origin: str, base: Path) -> NatsContext:
    """Read and check ``<base>/context/<name>.json``; every problem is a ``ConfigError``."""
    # fullmatch: with match, "$" also accepts a trailing newline ("prod\n"), which Go's regexp
    # rejects (found by tests/props/test_fuzz_inputs.py).
    if not _CONTEXT_NAME_RE.fullmatch(name) or name.startswith("."):
        raise ConfigError(
            f"invalid NATS context name {name!r} (from {origin}): use letters, digits, '_', '-', '.' or '@'"
        )
    path = base / "context" / f"{name}.json"
    hint = "create it with 'nats context add', or pick another with --context/NATS_CONTEXT"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: NATS context {name!r} (from {origin}) does not exist; {hint}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read NATS context {name!r}: {_reason(exc)}") from exc
    try:
        # No context field is a number: read every integer as a float, so one past Python's
        # 4,300-digit int() limit is a wrong type below like any other, not an odd parse error.
        data = json.loads(raw.decode("utf-8"), parse_int=float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{path}: NATS context {name!r} is not valid JSON ({_short(exc)}); "
            "fix it or recreate it with 'nats context add'"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: NATS context {name!r} must be a JSON object")
    values: dict[str, str | bool] = {}
    for key in _CONTEXT_STRING_FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{path}: field {key!r} must be a string")
        if "\x00" in value:
            raise ConfigError(f"{path}: field {key!r} contains a NUL character")
        values[key] = value
    tls_first = data.get("tls_first")
    if tls_first is not None:
        if not isinstance(tls_first, bool):
            raise ConfigError(f"{path}: field 'tls_first' must be true or false")
        values["tls_first"] = tls_first
    return NatsContext(name, path, values)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
