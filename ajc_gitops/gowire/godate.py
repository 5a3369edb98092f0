"""Just enough of Go's ``time`` package for the robfig/cron port.

Times are whole Unix seconds (``int``) read in a ``tzinfo``: ``SpecSchedule.Next`` drops the
fraction of a second before anything else, and every later step keeps whole seconds.

Two Go behaviours that Python's datetime does not reproduce live here:

* ``time.Date`` for a wall time in a DST gap or overlap (see ``go_date``); ``fold`` gives a
  different answer for zones east of UTC.
* ``time.LoadLocation`` name rules and error texts (``load_location``).
"""

from __future__ import annotations

import datetime
import errno
import functools
import io
import os
import struct
import zoneinfo
from typing import NamedTuple

from ajc_gitops.gowire.gotime import civil_from_days, days_from_civil

__all__ = [
    "GoTimeRangeError",
    "LocationError",
    "Wall",
    "from_unix",
    "go_date",
    "load_location",
    "offset_at",
    "to_unix",
    "wall",
]

_UTC = datetime.UTC
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_SECOND = datetime.timedelta(seconds=1)
# Go 1.19 platformZoneSources on Unix (zoneinfo_unix.go).
_GO_ZONE_SOURCES = ("/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/")
_MAX_TZ_FILE = 10 << 20  # zoneinfo_read.go maxFileSize


class GoTimeRangeError(ArithmeticError):
    """The computation left the years Python's datetime can represent (1..9999)."""


class LocationError(ValueError):
    """``time.LoadLocation`` failed; ``str()`` is Go's error text."""


class Wall(NamedTuple):
    """The local calendar reading of an instant, as Go's Time accessors give it."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    weekday: int  # Sunday = 0, as Go's time.Weekday


def to_unix(moment: datetime.datetime) -> int:
    """Whole Unix seconds of an aware datetime, rounding down like Go's Unix()."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return (moment - _EPOCH) // _SECOND


def from_unix(unix: int) -> datetime.datetime:
    """An aware UTC datetime; GoTimeRangeError past the years datetime supports."""
    try:
        return _EPOCH + datetime.timedelta(seconds=unix)
    except OverflowError as exc:
        raise GoTimeRangeError(str(exc)) from exc


def offset_at(zone: datetime.tzinfo, unix: int) -> int:
    """Seconds east of UTC in force in ``zone`` at the instant ``unix`` (Go's lookup)."""
    if zone is _UTC:
        return 0
    try:
        offset = from_unix(unix).astimezone(zone).utcoffset()
    except (OverflowError, ValueError) as exc:
        raise GoTimeRangeError(str(exc)) from exc
    if offset is None:  # pragma: no cover (only naive-style tzinfo subclasses do this)
        return 0
    return offset // _SECOND


def wall(unix: int, zone: datetime.tzinfo) -> Wall:
    """Go's Year()/Month()/.../Weekday() of the instant read in ``zone``."""
    local = unix + offset_at(zone, unix)
    days, secs = divmod(local, 86400)
    year, month, day = civil_from_days(days)
    return Wall(year, month, day, secs // 3600, secs // 60 % 60, secs % 60, (days + 4) % 7)


def go_date(year: int, month: int, day: int, hour: int, minute: int, sec: int, zone: datetime.tzinfo) -> int:
    """Go's ``time.Date`` (whole seconds): out-of-range fields carry over, and a wall time
    that is skipped or repeated resolves exactly as Go resolves it.

    Go reads the wall clock as if it were UTC, takes the offset in force at that instant,
    and keeps it only if the corrected instant still lies in the same zone period;
    otherwise it takes the offset at the corrected instant. Either way the offset used is
    the one in force at ``wall_as_utc - offset_at(wall_as_utc)``.
    """
    carry, month0 = divmod(month - 1, 12)
    unix = (days_from_civil(year + carry, month0 + 1, 1) + day - 1) * 86400 + hour * 3600 + minute * 60 + sec
    first = offset_at(zone, unix)
    if first == 0:
        return unix
    return unix - offset_at(zone, unix - first)


def add_date(unix: int, zone: datetime.tzinfo, months: int, days: int) -> int:
    """Go's ``t.AddDate(0, months, days)``: calendar arithmetic on the wall clock."""
    w = wall(unix, zone)
    return go_date(w.year, w.month + months, w.day + days, w.hour, w.minute, w.second, zone)


def _go_errno_text(code: int) -> str:
    # Go's syscall.Errno strings are glibc's with a lower-case first letter.
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


@functools.lru_cache(maxsize=64)
def _exact_case_path(directory: str, name: str) -> bool:
    """True when every component of ``name`` is spelled exactly as on disk.

    Go on Linux is case-sensitive; on a case-insensitive filesystem ``utc`` would open
    ``UTC``, so the spelling is checked against the directory listings.
    """
    current = directory
    for part in name.split("/"):
        if part in ("", "."):
            current = os.path.join(current, part)
            continue
        try:
            entries = os.listdir(current)
        except OSError:
            return True  # let the open() error speak
        if part not in entries:
            return False
        current = os.path.join(current, part)
    return True


def _read_zone_file(path: str) -> bytes:
    with open(os.fsencode(path), "rb") as handle:
        data = handle.read(_MAX_TZ_FILE + 1)
    if len(data) > _MAX_TZ_FILE:
        raise LocationError("file too large")
    return data


class _TZifReader(io.BytesIO):
    """Fails a read past the end: CPython's TZif reader loops forever on a file cut off
    inside its footer, waiting for a newline that never comes."""

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if not chunk and size != 0:
            raise ValueError("unexpected end of TZif data")
        return chunk


def _zone_from_tzif(data: bytes, name: str) -> datetime.tzinfo:
    return zoneinfo.ZoneInfo.from_file(_TZifReader(data), key=name)


@functools.lru_cache(maxsize=256)
def _load_system_location(name: str) -> datetime.tzinfo | str:
    """A zone from the tz database, or Go's error text (cached either way)."""
    sources: tuple[str, ...] = _GO_ZONE_SOURCES
    env_dir = os.environ.get("ZONEINFO", "")
    if env_dir and not env_dir.endswith(".zip"):
        sources = (env_dir, *sources)
    first_error: str | None = None
    any_source = False
    for source in sources:
        directory = source.rstrip("/")
        any_source = any_source or os.path.isdir(directory)
        path = directory + "/" + name
        try:
            if "\x00" in name:
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
            data = _read_zone_file(path)
            if not _exact_case_path(directory, name):
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        except LocationError as exc:
            first_error = first_error or str(exc)
            continue
        except OSError as exc:
            if exc.errno != errno.ENOENT and first_error is None:
                code = exc.errno if exc.errno is not None else errno.EIO
                first_error = _go_errno_text(code)
            continue
        try:
            return _zone_from_tzif(data, name)
        except (ValueError, struct.error):
            first_error = first_error or "malformed time zone information"
    if first_error is not None:
        return first_error
    if not any_source:
        # No system database (Windows): Go would use its bundled zip; use the tzdata wheel.
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return "unknown time zone " + name


def load_location(name: str, local: datetime.tzinfo) -> datetime.tzinfo:
    """Go's ``time.LoadLocation`` with ``time.Local`` = ``local``; raises LocationError."""
    if name in ("", "UTC"):
        return _UTC
    if name == "Local":
        return local
    if ".." in name or name[0] in "/\\":
        raise LocationError("time: invalid location name")
    found = _load_system_location(name)
    if isinstance(found, str):
        raise LocationError(found)
    return found
