"""The asyncjobs rules a schedule must meet before any Go program sees it (contract §2.4, §2.5).
Each check returns a message naming the rule that failed, or None."""

from __future__ import annotations

import re

from ajc_gitops.gowire import cron
from ajc_gitops.gowire.durations import DurationError, parse_duration
from ajc_gitops.model import NANOS_PER_SECOND

# Stricter than asyncjobs' own name regex: `:` passes IsValidName but the NATS KV client
# rejects it as a key (contract §2.4, `nats: invalid key`).
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
TASK_TYPE_RE = re.compile(r"[a-zA-Z0-9_:-]+")
QUEUE_RE = NAME_RE
MIN_DEADLINE_S = 30
DEFAULT_QUEUE = "DEFAULT"
DEFAULT_MAX_TRIES = 10

# `ajc task cron add` prepends "@" to a schedule starting with one of these words
# (ajc/task_cron_command.go:addAction; case-sensitive, "dailyx" becomes "@dailyx").
_CLI_SHORTCUTS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly", "every")


def _first_bad_char(value: str, allowed: re.Pattern[str]) -> tuple[int, str]:
    for index, char in enumerate(value):
        if not allowed.fullmatch(char):
            return index + 1, char
    return 0, ""


def name_problem(name: str) -> str | None:
    if not name:
        return "name is required"
    if NAME_RE.fullmatch(name):
        return None
    if ":" in name:
        return (
            f"name {name!r} contains ':': asyncjobs accepts it but the NATS KV key "
            "scheduled_tasks.<name> does not (nats: invalid key); use '_' or '-' instead"
        )
    if "." in name:
        return (
            f"name {name!r} contains '.': it would split the KV key scheduled_tasks.<name> into "
            "more tokens, so schedulers watching scheduled_tasks.* never see it; use '_' or '-'"
        )
    return _charset_problem(
        "name",
        name,
        NAME_RE,
        "schedule names may use only letters A-Z a-z, digits, '_' and '-' (asyncjobs name and NATS KV key rules)",
    )


def _charset_problem(label: str, value: str, allowed: re.Pattern[str], rule: str) -> str | None:
    """Which character of ``value`` breaks ``allowed``, and the rule that forbids it."""
    if allowed.fullmatch(value):
        return None
    position, char = _first_bad_char(value, allowed)
    return f"{label} {value!r} has {char!r} at position {position}: {rule}"


def task_type_problem(task_type: str) -> str | None:
    if not task_type:
        return "task_type is required"
    return _charset_problem(
        "task_type",
        task_type,
        TASK_TYPE_RE,
        "asyncjobs task types must match ^[a-zA-Z0-9_:-]+$ (Go: task type is invalid)",
    )


def queue_problem(queue: str) -> str | None:
    if not queue:
        return "queue name is required"
    return _charset_problem(
        "queue",
        queue,
        QUEUE_RE,
        "it becomes the stream name CHORIA_AJ_Q_<queue> and a subject token, so use only letters, digits, '_' and '-'",
    )


def normalize_schedule(text: str) -> str:
    """The schedule text as `ajc task cron add` would store it."""
    return "@" + text if text.startswith(_CLI_SHORTCUTS) else text


def parse_schedule(text: str) -> tuple[cron.SpecSchedule | cron.EverySchedule | None, str | None]:
    """Parse a (normalized) schedule; on failure the message says what Go would do with it."""
    try:
        return cron.parse_standard(text), None
    except cron.CronError as exc:
        if exc.panics:
            return None, (
                f"schedule {text!r} would crash every Go scheduler that loads it: robfig/cron "
                "panics on a TZ=/CRON_TZ= prefix with no space after the zone name; write it as "
                "'CRON_TZ=<zone> <5 fields>'"
            )
        return None, f"invalid cron schedule: {exc}"


_EVERY_MONTH_DAYS = sum(1 << day for day in range(1, 29))  # days 1-28 exist in every month
_ALL_WEEKDAYS = sum(1 << day for day in range(7))


def surely_fires(schedule: cron.SpecSchedule | cron.EverySchedule) -> bool:
    """True when the schedule certainly fires within robfig's 5-year search, decided from its
    bit sets alone; False means "ask Next" (it may still fire)."""
    if isinstance(schedule, cron.EverySchedule):
        return True
    if not (schedule.minute & ~cron.STAR_BIT and schedule.hour & ~cron.STAR_BIT and schedule.month & ~cron.STAR_BIT):
        return False
    some_day = bool(schedule.dom & _EVERY_MONTH_DAYS)
    some_weekday = bool(schedule.dow & _ALL_WEEKDAYS)
    dom_star, dow_star = bool(schedule.dom & cron.STAR_BIT), bool(schedule.dow & cron.STAR_BIT)
    if dom_star or dow_star:
        # robfig's day rule: with a star on either side both must match (contract §2.5).
        return some_day and some_weekday
    return some_day or some_weekday


def parse_deadline(text: str) -> tuple[int, str | None]:
    """Nanoseconds of a Go duration deadline as ``ajc task cron add`` stores it (whole
    seconds), or why it is not acceptable."""
    try:
        ns = parse_duration(text)
    except DurationError as exc:
        return 0, f"deadline: {exc}; write a Go duration such as 90s, 1h30m or 1.5h"
    # Go stores time.Until(now + deadline).Round(time.Second): a few microseconds have passed
    # since "now", so an exact half second rounds down (29.5s -> 29s) and anything else to the
    # nearest second; the 30 s floor is checked on that rounded value.
    rounded_s = -((-ns + NANOS_PER_SECOND // 2) // NANOS_PER_SECOND)
    if rounded_s < MIN_DEADLINE_S:
        return 0, (
            f"deadline {text!r} is too short: asyncjobs requires at least {MIN_DEADLINE_S}s "
            "(Go: deadline too short); raise it or remove the key"
        )
    return rounded_s * NANOS_PER_SECOND, None
