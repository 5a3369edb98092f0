"""Every error a user can fix is an ``AjcError``; ``cli/errors.py`` is the only place that
turns one into a message and an exit code. Every subclass is defined here.

    AjcError
    ├── UsageError          bad flags or arguments (exit 2)
    ├── CommandError        a refused or impossible request
    │   ├── InvalidSchedule     ``next`` was given a schedule Go would reject
    │   ├── PlanBlocked         the plan has blocking notices (apply would refuse it)
    │   ├── ApplyRefused        a plan that must not be applied as it stands
    │   └── ApplyCancelled      the person at the prompt did not answer "yes"
    ├── ManifestError       a manifest cannot be used; carries Problems
    ├── ExportError         a live schedule cannot be written as a manifest, or --dir is unsafe
    ├── ConfigError         connection options, context files
    ├── PlanFileError       a saved plan file that is not ours, of another version, or damaged
    └── StoreError          anything that went wrong talking to NATS
        ├── ConnectError        server unreachable, bad credentials, no JetStream
        ├── ConflictError       a key changed since it was read (revision mismatch)
        ├── StalePlanError      a saved plan no longer matches the store
        ├── ApplyIncomplete     some changes of an apply were not applied (listed)
        └── EmbeddedServerError the embedded nats-server did not start or stop

The pure layers (``gowire``, ``codec``) raise ``ValueError`` subclasses that carry Go's own
error text (``DecodeError``, ``CronError``, ``DurationError``...); the layer that knows where the
value came from turns them into a ``Problem`` or one of the errors above.
"""

from __future__ import annotations


class AjcError(Exception):
    """Base of every expected error; ``str(err)`` is the one-line message."""

    exit_code = 1


class UsageError(AjcError):
    exit_code = 2


class CommandError(AjcError):
    """A refused or impossible request. Exit 1, never 2: with --detailed-exitcode, 2 means
    "changes", so CI must not read an error as one."""


class InvalidSchedule(CommandError):
    pass


class PlanBlocked(CommandError):
    pass


class ApplyRefused(CommandError):
    """The plan must not be applied as it stands (blocking notices, would empty the bucket)."""


class ApplyCancelled(CommandError):
    pass


class ManifestError(AjcError):
    pass


class ExportError(AjcError):
    pass


class ConfigError(AjcError):
    pass


class PlanFileError(AjcError):
    """A saved plan file that cannot be used: not ours, another version, or damaged."""


class StoreError(AjcError):
    pass


class ConnectError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class StalePlanError(StoreError):
    pass


class ApplyIncomplete(StoreError):
    pass


class EmbeddedServerError(StoreError):
    """nats-server did not start or stop; the message includes the tail of its log."""
