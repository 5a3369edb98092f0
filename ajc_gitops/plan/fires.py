"""The next fire times a plan shows for a schedule it writes. Pure: the instant comes in."""

from __future__ import annotations

from datetime import UTC, datetime

from ajc_gitops.gowire import cron
from ajc_gitops.plan.model import FireTimes

__all__ = ["FIRE_COUNT", "fire_times"]

FIRE_COUNT = 3


def _zone_of(schedule: str) -> str | None:
    if not schedule.startswith(("TZ=", "CRON_TZ=")):
        return None
    return schedule[schedule.find("=") + 1 : schedule.find(" ")] or "UTC"


def fire_times(schedule: str, now: datetime, cache: dict[str, FireTimes | None]) -> FireTimes | None:
    if schedule in cache:
        return cache[schedule]
    try:
        parsed = cron.parse_standard(schedule)
    except cron.CronError:
        found = None  # the loader rejected it already; a plan shows no times rather than crash
    else:
        times = cron.next_times(parsed, now, FIRE_COUNT)
        zone = _zone_of(schedule)
        found = FireTimes(
            utc=tuple(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times),
            zone=zone,
            local=tuple(t.astimezone(parsed.location).isoformat() for t in times) if zone else (),
        )
    cache[schedule] = found
    return found
