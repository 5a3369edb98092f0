"""Every error a user can fix is an ``AjcError``; ``cli/errors.py`` is the only place that
turns one into a message and an exit code.

    AjcError
    ├── UsageError          bad flags or arguments (exit 2)
    ├── ManifestError       a manifest cannot be used; carries Problems
    ├── ConfigError         connection options, context files
    ├── PlanFileError       a saved plan file that is not ours, of another version, or damaged
    └── StoreError          anything that went wrong talking to NATS
        ├── ConnectError    server unreachable, bad credentials, no JetStream
        ├── ConflictError   a key changed since it was read (revision mismatch)
        └── StalePlanError  a saved plan no longer matches the store
"""

from __future__ import annotations


class AjcError(Exception):
    """Base of every expected error; ``str(err)`` is the one-line message."""

    exit_code = 1


class UsageError(AjcError):
    exit_code = 2


class ManifestError(AjcError):
    pass


class ConfigError(AjcError):
    pass


class StoreError(AjcError):
    pass


class ConnectError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class StalePlanError(StoreError):
    pass


class PlanFileError(AjcError):
    """A saved plan file that cannot be used: not ours, another version, or damaged."""
