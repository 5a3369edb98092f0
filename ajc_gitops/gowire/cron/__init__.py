"""robfig/cron v3.0.1 ``ParseStandard`` and ``Schedule.Next``, ported from Go.

asyncjobs evaluates a schedule with robfig/cron, with ``time.Local`` = UTC. This is a
transcription of that code, not a wrapper around croniter: croniter disagrees with Go on 206
of the 522 conformance vectors (TZ=/CRON_TZ= prefixes, ``?`` in every field, the ``*/1`` star
rule, DST gaps and overlaps, the 5-year limit, error texts); see
shared/conformance/cron_semantics.md for every rule. ``parse`` reads an expression,
``schedule`` computes ``Next``, ``fields`` holds the bit sets both share.
"""

from __future__ import annotations

from ajc_gitops.gowire.cron.fields import STAR_BIT
from ajc_gitops.gowire.cron.parse import CronError, parse_standard
from ajc_gitops.gowire.cron.schedule import EverySchedule, Schedule, SpecSchedule, next_times

__all__ = ["STAR_BIT", "CronError", "EverySchedule", "Schedule", "SpecSchedule", "next_times", "parse_standard"]
