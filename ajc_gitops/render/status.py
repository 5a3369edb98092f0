"""``status`` as text, JSON and Markdown (STYLE.md: renderers take data and return text).

Text and Markdown show each schedule's counts, its next fires, and only the slots worth a look
(missed, unknown, late, failed, and the latest one); JSON carries every slot, under
``format_version``."""

from __future__ import annotations

import datetime
import functools
import json
import math
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from ajc_gitops.status.model import FORMAT_VERSION, ScheduleStatus, SlotKind, SlotStatus, StatusReport

__all__ = ["STATUS_RENDERERS", "render_json", "render_markdown", "render_text", "slot_line", "status_document"]


@functools.lru_cache(maxsize=65536)
def _t(seconds: int) -> str:
    # Cached: the slots of one fire share their instant, and mostly their creation second
    # (JSON shows two per slot, 240,000 slots at the scale status is measured at).
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tns(ns: int) -> str:
    return _t(ns // 1_000_000_000)


def _leader_line(report: StatusReport) -> str:
    lead = report.leader
    if lead.holder is None:
        return f"Leader: none ({lead.note})"
    since = f" since {_tns(lead.since_ns)}" if lead.since_ns else " since unknown"
    return f"Leader: {lead.holder} ({lead.kind}){since}" + (f" ({lead.note})" if lead.note else "")


def _counts(s: ScheduleStatus) -> str:
    parts = [f"{s.count(k)} {k.value}" for k in SlotKind if s.count(k)]
    if s.failed:
        parts.append(f"{s.failed} failed")
    return ", ".join(parts) if parts else "no slots in the window"


def slot_line(slot: SlotStatus) -> str:
    text = f"{_t(slot.instant_s)}  {slot.kind.value}"
    if slot.catchup and slot.lag_s is not None:
        text += f" (catch-up, +{slot.lag_s:.0f}s)"
    if slot.task is not None:
        t = slot.task
        text += f"  task {t.id} {t.state} tries {t.tries}"
        if t.found_by == "scan":
            text += " (Go-created, matched by type, queue and time)"
        if t.last_err:
            text += f": {t.last_err}"
    if slot.note:
        text += f"  ({slot.note})"
    return text


def _notable(s: ScheduleStatus) -> list[SlotStatus]:
    worth = [
        slot
        for slot in s.slots
        if slot.kind in (SlotKind.MISSED, SlotKind.UNKNOWN, SlotKind.LATE) or (slot.task and slot.task.failed)
    ]
    if s.slots and (not worth or worth[-1] is not s.slots[-1]):
        worth.append(s.slots[-1])
    return worth


def _state(s: ScheduleStatus) -> str:
    return s.state.value + (f" ({s.reason})" if s.reason else "")


def _summary(report: StatusReport) -> str:
    totals = [f"{report.total(k):,} {k.value}" for k in SlotKind]
    return f"{len(report.schedules):,} schedule(s); slots: {', '.join(totals)}; {report.failed:,} failed"


def render_text(report: StatusReport) -> str:
    out = [
        f"Server: {report.server}",
        _leader_line(report),
        f"Window: {_t(report.since_s)} .. {_t(report.now_s)}",
        "",
    ]
    for s in report.schedules:
        target = f"  -> {s.queue} {s.task_type}" if s.queue else ""
        out.append(f"{s.name}  {_state(s)}  {s.schedule}{target}".rstrip())
        if s.next_fires:
            out.append("  next: " + ", ".join(_t(n) for n in s.next_fires))
        if s.queue_missing:
            out.append(f"  warning: queue {s.queue} has no stream CHORIA_AJ_Q_{s.queue}: every fire ends in "
                       f"queue_error; create it with: ajc queue add {s.queue}")  # fmt: skip
        out.append(f"  slots: {_counts(s)}")
        out += [f"    {slot_line(slot)}" for slot in _notable(s)]
    for name in report.not_found:
        out.append(f"{name}  not found: no scheduled_tasks.{name} record")
    out += ["", _summary(report)]
    out += [f"note: {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def _slot_json(slot: SlotStatus) -> dict[str, Any]:
    body: dict[str, Any] = {"instant": _t(slot.instant_s), "kind": slot.kind.value, "catchup": slot.catchup}
    if slot.lag_s is not None:
        body["lag_seconds"] = round(slot.lag_s, 3)
    if slot.task is not None:
        t = slot.task
        body["task"] = {
            "id": t.id,
            "state": t.state,
            "tries": t.tries,
            "last_err": t.last_err,
            "created": _tns(t.created_ns),
            "found_by": t.found_by,
            "failed": t.failed,
        }
    if slot.note:
        body["note"] = slot.note
    return body


def status_document(report: StatusReport) -> dict[str, Any]:
    """The JSON value ``render_json`` prints (its specification; the test compares them)."""
    return _document(report, with_slots=True)


def _document(report: StatusReport, *, with_slots: bool) -> dict[str, Any]:
    lead = report.leader
    doc = {
        "format_version": FORMAT_VERSION,
        "server": report.server,
        "now": _t(report.now_s),
        "since": _t(report.since_s),
        "leader": {
            "holder": lead.holder,
            "kind": lead.kind,
            "since": _tns(lead.since_ns) if lead.since_ns else None,
            "note": lead.note,
        },
        "schedules": [
            {
                "name": s.name,
                "state": s.state.value,
                "reason": s.reason,
                "schedule": s.schedule,
                "queue": s.queue,
                "task_type": s.task_type,
                "queue_missing": s.queue_missing,
                "next": [_t(n) for n in s.next_fires],
                "counts": {k.value: s.count(k) for k in SlotKind} | {"failed": s.failed},
                "slots": [_slot_json(slot) for slot in s.slots] if with_slots else [],
            }
            for s in report.schedules
        ],
        "not_found": list(report.not_found),
        "totals": {k.value: report.total(k) for k in SlotKind} | {"failed": report.failed},
        "notes": list(report.notes),
    }
    return doc


# Where each schedule's slot list sits when json.dumps(indent=2) prints the document: schedules
# are the only objects two levels down, and no string holds a raw newline, so this text marks
# exactly the schedules' "slots" members, in order.
_SLOTS_MEMBER = '\n      "slots": []'
_INF = float("inf")


def _scalar(value: object) -> str:
    """A leaf as ``json.dumps`` writes it (ASCII strings, ``float.__repr__``, NaN/Infinity)."""
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is float:
        if math.isnan(value):
            return "NaN"
        if value in (_INF, -_INF):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return json.dumps(value)


def _slot_text(slot: SlotStatus) -> str:
    """One slot as ``json.dumps(status_document(...), indent=2)`` prints it, three levels down."""
    lines = [
        f'          "instant": "{_t(slot.instant_s)}"',
        f'          "kind": {_scalar(slot.kind.value)}',
        f'          "catchup": {"true" if slot.catchup else "false"}',
    ]
    if slot.lag_s is not None:
        lines.append(f'          "lag_seconds": {_scalar(round(slot.lag_s, 3))}')
    if (t := slot.task) is not None:
        lines.append(
            '          "task": {\n'
            f'            "id": {_scalar(t.id)},\n'
            f'            "state": {_scalar(t.state)},\n'
            f'            "tries": {_scalar(t.tries)},\n'
            f'            "last_err": {_scalar(t.last_err)},\n'
            f'            "created": "{_tns(t.created_ns)}",\n'
            f'            "found_by": {_scalar(t.found_by)},\n'
            f'            "failed": {"true" if t.failed else "false"}\n'
            "          }"
        )
    if slot.note:
        lines.append(f'          "note": {_scalar(slot.note)}')
    return "        {\n" + ",\n".join(lines) + "\n        }"


def render_json(report: StatusReport) -> str:
    """``json.dumps(status_document(report), indent=2)`` and a newline, byte for byte. The
    standard encoder pretty-prints in Python (2.5 s for 240,000 slots); the slots, which are
    nearly all of it, are written here directly."""
    parts = json.dumps(_document(report, with_slots=False), indent=2).split(_SLOTS_MEMBER)
    if len(parts) != len(report.schedules) + 1:  # a layout this module does not know: print it plainly
        return json.dumps(status_document(report), indent=2) + "\n"
    out = [parts[0]]
    for schedule, rest in zip(report.schedules, parts[1:], strict=True):
        slots = schedule.slots
        out.append('\n      "slots": ' + ("[\n" + ",\n".join(map(_slot_text, slots)) + "\n      ]" if slots else "[]"))
        out.append(rest)
    return "".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def render_markdown(report: StatusReport) -> str:
    out = [
        "### ajc-gitops status",
        "",
        f"{_leader_line(report)}  ",
        f"Window: {_t(report.since_s)} .. {_t(report.now_s)}  ",
        _summary(report),
        "",
        "| schedule | state | next | fired | late | missed | unknown | failed |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in report.schedules:
        nxt = _t(s.next_fires[0]) if s.next_fires else ""
        counts = " | ".join(str(s.count(k)) for k in (SlotKind.FIRED, SlotKind.LATE, SlotKind.MISSED, SlotKind.UNKNOWN))
        out.append(f"| `{_md(s.name)}` | {_md(_state(s))} | {nxt} | {counts} | {s.failed} |")
    shown = [f"- `{_md(s.name)}` {_md(slot_line(slot))}" for s in report.schedules for slot in _notable(s)]
    if shown:
        out += ["", "<details><summary>slots worth a look</summary>", "", *shown, "", "</details>"]
    out += [f"- {name}: not found" for name in report.not_found]
    out += [f"> {_md(n)}" for n in report.notes]
    return "\n".join(out) + "\n"


STATUS_RENDERERS: dict[str, Callable[[StatusReport], str]] = {
    "text": render_text,
    "json": render_json,
    "markdown": render_markdown,
}
