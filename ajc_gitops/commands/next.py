"""`ajc-gitops next`: when will a schedule fire, computed as the Go scheduler computes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from ajc_gitops import output, rules
from ajc_gitops.commands.options import NextOptions
from ajc_gitops.errors import InvalidSchedule, UsageError
from ajc_gitops.gowire import cron
from ajc_gitops.gowire.gotime import parse_rfc3339

EXIT_OK = 0
MAX_COUNT = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FireTimes:
    schedule: str
    location: tzinfo
    times: tuple[datetime, ...]


def parse_from(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        raise UsageError(f"--from {text!r} is not an RFC3339 time; write it like 2026-12-01T00:00:00Z") from None
    # Python datetimes stop at microseconds; Next drops sub-second digits anyway.
    return _EPOCH + timedelta(microseconds=parsed.unix_ns // 1000)


def fire_times(schedule: str, after: datetime, count: int) -> FireTimes:
    spec = rules.normalize_schedule(schedule)
    parsed, message = rules.parse_schedule(spec)
    if parsed is None:
        raise InvalidSchedule(message or "invalid schedule")
    return FireTimes(spec, parsed.location, tuple(cron.next_times(parsed, after, count)))


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def zone_name(location: tzinfo) -> str | None:
    name = getattr(location, "key", None) or str(location)
    return None if name in ("UTC", "UTC+00:00") else name


def render_text(result: FireTimes) -> str:
    zone = zone_name(result.location)
    lines = []
    for moment in result.times:
        line = utc_text(moment)
        if zone:
            line += f"  {moment.astimezone(result.location).isoformat()} {zone}"
        lines.append(line)
    if not lines:
        lines.append(f"{result.schedule!r} does not fire within the 5 years robfig/cron searches")
    return "\n".join(lines) + "\n"


def render_json(result: FireTimes) -> str:
    return json.dumps({"schedule": result.schedule, "next": [utc_text(t) for t in result.times]}) + "\n"


def run(opts: NextOptions, *, now: datetime | None = None) -> int:
    if not 1 <= opts.count <= MAX_COUNT:
        raise UsageError(f"--count must be between 1 and {MAX_COUNT}, not {opts.count}")
    result = fire_times(opts.schedule, parse_from(opts.after, now or datetime.now(UTC)), opts.count)
    output.write(render_json(result) if opts.output_format == "json" else render_text(result))
    return EXIT_OK
