"""nats-py exceptions and JetStream error replies turned into ours (``ConnectError`` /
``ConflictError`` / ``StoreError``), and the error texts the store's calls share.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg

from ajc_gitops.errors import AjcError, ConflictError, ConnectError, StoreError

__all__ = [
    "ERR_CONSUMER_NOT_FOUND",
    "ERR_JS_NOT_ENABLED",
    "ERR_JS_TEMPORARILY_UNAVAILABLE",
    "ERR_NO_MESSAGE_FOUND",
    "ERR_STREAM_NAME_IN_USE",
    "ERR_STREAM_NOT_FOUND",
    "ERR_WRONG_LAST_SEQUENCE",
    "ErrorLog",
    "decode_reply",
    "error_text",
    "is_auth_text",
    "is_not_found",
    "is_permission_text",
    "map_nats_errors",
    "permission_text",
]

# JetStream error codes (nats-server errors.json).
ERR_CONSUMER_NOT_FOUND = 10014
ERR_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
ERR_JS_NOT_ENABLED = frozenset({10039, 10076})
ERR_STREAM_NOT_FOUND = 10059
ERR_STREAM_NAME_IN_USE = 10058
ERR_NO_MESSAGE_FOUND = 10037
ERR_JS_TEMPORARILY_UNAVAILABLE = 10008  # a cluster node still recovering its meta layer


def is_permission_text(text: str) -> bool:
    return "permissions violation" in text.lower()


def is_auth_text(text: str) -> bool:
    low = text.lower()
    return "authorization" in low or "authentication" in low or "user authentication" in low


@contextlib.contextmanager
def map_nats_errors(
    server_desc: str,
    what: str = "",
    *,
    permission_error: Callable[[], str | None] | None = None,
) -> Iterator[None]:
    """Turn any nats-py (or socket) exception into the most specific ``StoreError``.

    ``permission_error`` returns a permissions violation the server reported while the
    block ran: nats-py only reports those to the error callback, the request itself then
    just times out (nats.py ``_process_err``).
    """
    prefix = f"{server_desc}: {what + ': ' if what else ''}"
    try:
        yield
    except AjcError:
        raise
    except nats.js.errors.APIError as exc:
        # Some subclasses (KeyWrongLastSequenceError, KeyDeletedError) skip APIError.__init__.
        desc = getattr(exc, "description", None) or str(exc)
        code, err_code = getattr(exc, "code", None), getattr(exc, "err_code", None)
        if err_code in ERR_WRONG_LAST_SEQUENCE or isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
            raise ConflictError(f"{prefix}revision changed ({desc})") from exc
        if err_code in ERR_JS_NOT_ENABLED:
            raise ConnectError(f"{prefix}JetStream is not enabled ({desc})") from exc
        raise StoreError(f"{prefix}{desc} (code {code}, err_code {err_code})") from exc
    except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
        raise StoreError(f"{prefix}no JetStream stream or API answered (bucket missing? JetStream off?)") from exc
    except TimeoutError as exc:  # nats.errors.TimeoutError is one too
        denied = permission_error() if permission_error is not None else None
        if denied:
            raise ConnectError(f"{prefix}permission denied: {denied}") from exc
        raise StoreError(f"{prefix}timed out waiting for the server") from exc
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.StaleConnectionError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
    ) as exc:
        raise ConnectError(f"{prefix}connection lost ({exc})") from exc
    except nats.errors.AuthorizationError as exc:
        raise ConnectError(f"{prefix}authorization failed: check user/password/token") from exc
    except nats.errors.Error as exc:
        text = str(exc)
        if is_permission_text(text):
            raise ConnectError(f"{prefix}permission denied: {permission_text(text, None)}") from exc
        if is_auth_text(text):
            said = text.removeprefix("nats: ").strip("'")
            raise ConnectError(f"{prefix}authorization failed ({said}): check user/password/token/creds") from exc
        raise StoreError(f"{prefix}{text}") from exc
    except ModuleNotFoundError as exc:
        # nats-py imports nkeys lazily for creds/nkey authentication.
        raise ConnectError(f"{prefix}{exc.name} is needed for creds/nkey auth: pip install {exc.name}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConnectError(f"{prefix}cannot connect: {reason}") from exc


def error_text(exc: BaseException) -> str:
    """A short cause for messages (errors nats-py passes to the error callback)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc) or type(exc).__name__).removeprefix("nats: ")


_PERMISSION_RE = re.compile(r'permissions violation for (publish|subscription) to "?([^"]*)"?', re.I)


def permission_text(raw: str, subject: str | None) -> str:
    """nats-py lower-cases the server's -ERR text, so name the subject we actually used."""
    m = _PERMISSION_RE.search(raw)
    if m is None:
        return raw
    if m.group(1).lower() == "publish":
        return f"not allowed to publish to {subject or m.group(2)}"
    return f"not allowed to subscribe to {m.group(2)}"


class ErrorLog:
    """Recent errors from nats-py's error callback, numbered so a call can ask "since when"."""

    def __init__(self, keep: int = 64) -> None:
        self._recent: deque[tuple[int, str]] = deque(maxlen=keep)
        self._count = 0

    def add(self, text: str) -> None:
        self._count += 1
        self._recent.append((self._count, text))

    def mark(self) -> int:
        return self._count

    def since(self, mark: int) -> list[str]:
        return [text for n, text in self._recent if n > mark]

    def last(self) -> str | None:
        return self._recent[-1][1] if self._recent else None


def is_not_found(exc: StoreError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, nats.js.errors.APIError) and (
        getattr(cause, "err_code", None) == ERR_STREAM_NOT_FOUND or getattr(cause, "code", None) == 404
    )


def decode_reply(msg: Msg) -> dict[str, Any]:
    """A JetStream API/PubAck JSON reply; its ``error`` is raised as nats-py's APIError."""
    try:
        data = json.loads(msg.data)
    except ValueError as exc:
        raise StoreError(f"unexpected JetStream reply {msg.data[:80]!r}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"unexpected JetStream reply {msg.data[:80]!r}")
    err = data.get("error")
    if isinstance(err, dict):
        raise nats.js.errors.APIError(
            code=err.get("code"), err_code=err.get("err_code"), description=err.get("description")
        )
    return data
