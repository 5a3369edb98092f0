"""`ajc-gitops scheduler` flag handling and log formats (commands/scheduler.py)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import timedelta

import pytest

from ajc_gitops.commands.scheduler import JsonFormatter, TextFormatter, parse_window
from ajc_gitops.errors import UsageError
from ajc_gitops.scheduler.runner import host_zone


@pytest.mark.parametrize(("text", "window"), [("90s", timedelta(seconds=90)), ("5m", timedelta(minutes=5)),
                                              ("0", timedelta(0)), (None, None)])  # fmt: skip
def test_catchup_window_is_a_go_duration(text, window):
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["5 minutes", "-1m", "1d"])
def test_bad_catchup_windows_are_usage_errors(text):
    with pytest.raises(UsageError, match="--catchup-window"):
        parse_window(text)


def _record(exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("ajc_gitops.x", logging.WARNING, __file__, 1, "lost %s", ("a\nb",), exc_info)


def test_json_logs_are_one_object_per_line_without_traceback():
    try:
        raise ValueError("boom")
    except ValueError as exc:
        line = JsonFormatter().format(_record(exc))
    assert "\n" not in line
    body = json.loads(line)
    assert list(body) == ["time", "level", "logger", "msg", "error"]
    assert (body["level"], body["msg"], body["error"]) == ("warning", "lost a\nb", "ValueError: boom")


def test_text_logs_are_one_line_without_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        line = TextFormatter().format(_record(sys.exc_info()[1]))
    assert "\n" not in line and "Traceback" not in line and line.endswith("lost a | b")


def test_host_zone_follows_tz_like_go():
    assert host_zone({"TZ": ""}).utcoffset(None) == timedelta(0)
    assert str(host_zone({"TZ": "Europe/Berlin"})) == "Europe/Berlin"


def test_dev_marks_a_task_made_well_after_its_slot_as_a_catch_up():
    from ajc_gitops.commands.scheduler import catchup_note
    from ajc_gitops.gowire.godate import from_unix
    from ajc_gitops.scheduler.tasks import task_id_for

    slot = 1_796_450_400
    tid = task_id_for("demo-heartbeat", from_unix(slot))
    assert catchup_note(tid, "new", slot + 0.5) == ""  # on time
    assert catchup_note(tid, "new", slot + 300).startswith(" (catch-up of ")
    assert catchup_note(tid, "complete", slot + 300) == ""  # only the creation is a fire
    assert catchup_note("not-a-ksuid", "new", slot + 300) == ""
