from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ajc_gitops.manifest.load import PayloadForm, load_manifests
from ajc_gitops.manifest.yamlload import MAX_MANIFEST_BYTES
from ajc_gitops.problems import Severity

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "schedules"


def load(tmp_path: Path, **files: str | bytes):
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return load_manifests([tmp_path], now=NOW)


def messages(result) -> list[str]:
    return [str(p) for p in result.problems]


def one_error(result) -> str:
    errors = [str(p) for p in result.errors]
    assert len(errors) == 1, errors
    return errors[0]


GOOD = """\
schedules:
  - name: EMAIL_MONTHLY_UPDATE
    schedule: "0 0 1 * *"
    queue: EMAIL
    task_type: email:monthly
    payload: {template: monthly}
    deadline: 12h
    max_tries: 5
"""


def test_examples_are_valid():
    result = load_manifests([EXAMPLES], now=NOW)
    assert messages(result) == []
    names = {s.task.name for s in result.schedules}
    assert {"EMAIL_MONTHLY_UPDATE", "platform-health-check", "sales-hourly-berlin"} <= names
    assert result.files == 3


def test_good_schedule_becomes_the_go_record_fields(tmp_path):
    result = load(tmp_path, **{"a.yaml": GOOD})
    assert messages(result) == []
    (item,) = result.schedules
    task = item.task
    assert (task.name, task.schedule, task.queue, task.task_type) == (
        "EMAIL_MONTHLY_UPDATE",
        "0 0 1 * *",
        "EMAIL",
        "email:monthly",
    )
    assert task.payload == b'{"template":"monthly"}'
    assert task.deadline_ns == 12 * 3600 * 10**9
    assert task.max_tries == 5
    assert item.payload_form is PayloadForm.JSON
    assert str(item.location) == f"{tmp_path / 'a.yaml'}:2:5"


def test_defaults_and_cli_conventions_apply(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": """\
defaults: {queue: OPS, deadline: 90s}
schedules:
  - {name: a, schedule: monthly, task_type: t}
  - {name: b, schedule: "every 10m", task_type: t, queue: OTHER, max_tries: 0}
  - {name: c, schedule: "@daily", task_type: t, payload: "{\\"a\\":1}"}
"""
        },
    )
    assert messages(result) == []
    a, b, c = (s.task for s in result.schedules)
    assert (a.schedule, a.queue, a.deadline_ns, a.max_tries, a.payload) == ("@monthly", "OPS", 90 * 10**9, 10, None)
    assert (b.schedule, b.queue, b.max_tries) == ("@every 10m", "OTHER", 10)  # 0 is stored as Go stores it
    # A YAML string payload is stored as a JSON string, exactly what `ajc task cron add --payload` stores.
    assert c.payload == b'"{\\"a\\":1}"'


def test_task_type_may_come_from_defaults_but_is_required(tmp_path):
    result = load(tmp_path, **{"a.yaml": "defaults: {task_type: t}\nschedules: [{name: a, schedule: '@daily'}]"})
    assert messages(result) == [] and result.schedules[0].task.task_type == "t"
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '@daily'}]"})
    assert one_error(result).endswith(
        "a.yaml:1:13: error: missing required key 'task_type'; set it on the schedule or in the file's defaults:"
    )


def test_queue_defaults_to_default(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t}]"})
    assert result.schedules[0].task.queue == "DEFAULT"


def test_payload_base64_and_explicit_null(tmp_path):
    raw = bytes(range(256))
    result = load(
        tmp_path,
        **{
            "a.yaml": f"""\
schedules:
  - {{name: a, schedule: '@daily', task_type: t, payload_base64: "{base64.b64encode(raw).decode()}"}}
  - {{name: b, schedule: '@daily', task_type: t, payload: null}}
"""
        },
    )
    assert messages(result) == []
    a, b = result.schedules
    assert a.task.payload == raw and a.payload_form is PayloadForm.BASE64
    assert b.task.payload == b"null"


def test_payload_keys_sorted_and_html_escaped_like_go(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t, payload: {b: '<x>', a: [1, 2.5, true]}}]"
        },
    )
    assert result.schedules[0].task.payload == b'{"a":[1,2.5,true],"b":"\\u003cx\\u003e"}'
    assert json.loads(result.schedules[0].task.payload) == {"a": [1, 2.5, True], "b": "<x>"}


def test_timestamps_stay_strings(tmp_path):
    result = load(
        tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t, payload: {at: 2026-01-01}}]"}
    )
    assert result.schedules[0].task.payload == b'{"at":"2026-01-01"}'


def test_unknown_key_suggests_the_right_one(tmp_path):
    result = load(tmp_path, **{"a.yaml": GOOD.replace("    deadline:", "    dedline:")})
    assert one_error(result).endswith(
        "a.yaml:7:5: error: schedules.0.dedline: unknown key 'dedline'; did you mean 'deadline'?"
    )


def test_all_problems_are_reported_not_just_the_first(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": """\
schedules:
  - name: "bad name"
    schedule: "* * * *"
    task_type: "t t"
    deadline: 10s
    max_tries: -1
"""
        },
    )
    text = messages(result)
    assert len(text) == 5, text
    assert any(":2:11: error: name 'bad name' has ' ' at position 4" in m for m in text)
    assert any(":3:15: error: invalid cron schedule: expected exactly 5 fields, found 4: [* * * *]" in m for m in text)
    assert any(":4:16: error: task_type 't t' has ' '" in m for m in text)
    assert any(":5:15: error: deadline '10s' is too short" in m for m in text)
    assert any(":6:16: error: schedules.0.max_tries: must be at least 0, not -1" in m for m in text)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a:b", "contains ':': asyncjobs accepts it but the NATS KV key"),
        ("a.b", "contains '.': it would split the KV key"),
        ("héllo", "has 'é' at position 2"),
        ("", "name is required"),
    ],
)
def test_name_rules_explain_which_rule_failed(tmp_path, name, expected):
    result = load(tmp_path, **{"a.yaml": f"schedules: [{{name: '{name}', schedule: '@daily', task_type: t}}]"})
    assert expected in one_error(result)


def test_missing_required_key_is_one_message(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, task_type: t}]"})
    assert one_error(result).endswith("error: schedules.0: missing required key 'schedule'")


def test_schedule_that_panics_go_is_rejected_with_a_reason(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: 'CRON_TZ=UTC', task_type: t}]"})
    assert "would crash every Go scheduler" in one_error(result)


def test_bad_time_zone_reports_gos_error(tmp_path):
    result = load(
        tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: 'CRON_TZ=Mars/Olympus 0 0 * * *', task_type: t}]"}
    )
    assert "invalid cron schedule: provided bad location Mars/Olympus: unknown time zone Mars/Olympus" in one_error(
        result
    )


@pytest.mark.parametrize(
    ("deadline_yaml", "expected"),
    [
        ("10s", "too short"),
        ("29.4s", "too short"),
        ("1d", 'deadline: time: unknown unit "d" in duration "1d"'),
        ("3600", "schedules.0.deadline: must be a string, not an integer"),
    ],
)
def test_deadline_rules(tmp_path, deadline_yaml, expected):
    entry = f"{{name: a, schedule: '@daily', task_type: t, deadline: {deadline_yaml}}}"
    result = load(tmp_path, **{"a.yaml": f"schedules: [{entry}]"})
    assert expected in one_error(result)


def test_go_duration_forms_are_accepted(tmp_path):
    entries = [
        "{name: a, schedule: '@daily', task_type: t, deadline: 1.5h}",
        "{name: b, schedule: '@daily', task_type: t, deadline: 29.6s}",
    ]
    result = load(tmp_path, **{"a.yaml": f"schedules: [{', '.join(entries)}]"})
    assert messages(result) == []
    assert result.schedules[0].task.deadline_ns == 5400 * 10**9
    assert result.schedules[1].task.deadline_ns == 30 * 10**9  # whole seconds, as Go stores it


def test_duplicate_names_across_files_report_both_locations(tmp_path):
    result = load(tmp_path, **{"a.yaml": GOOD, "sub/b.yml": "\n" + GOOD})
    text = messages(result)
    assert len(text) == 2
    a, b = tmp_path / "a.yaml", tmp_path / "sub" / "b.yml"
    assert f"{a}:2:5: error: duplicate schedule name 'EMAIL_MONTHLY_UPDATE', also defined at {b}:3:5" in text
    assert f"{b}:3:5: error: duplicate schedule name 'EMAIL_MONTHLY_UPDATE', also defined at {a}:2:5" in text


@pytest.mark.parametrize("broken", ["schedule: \"@dailyy\"", "max_tries: -1", "deadline: 1x", "payload: {n: .inf}"])
def test_duplicate_names_are_reported_when_one_entry_has_another_error(tmp_path, broken):
    # Issue 9 item 8: fixing the second error must not be the first time the duplicate shows.
    entry = "  - name: nightly\n    schedule: \"@daily\"\n    task_type: t\n"
    second = entry.replace('schedule: "@daily"', broken) if broken.startswith("schedule") else entry + f"    {broken}\n"
    result = load(tmp_path, **{"a.yaml": "schedules:\n" + entry + second})
    text = messages(result)
    path = tmp_path / "a.yaml"
    assert f"{path}:2:5: error: duplicate schedule name 'nightly', also defined at {path}:5:5" in text
    assert f"{path}:5:5: error: duplicate schedule name 'nightly', also defined at {path}:2:5" in text
    assert len(result.errors) == 3, text


def test_an_invalid_name_is_not_reported_as_a_duplicate(tmp_path):
    entry = "  - name: 'a b'\n    schedule: \"@daily\"\n    task_type: t\n"
    result = load(tmp_path, **{"a.yaml": "schedules:\n" + entry + entry})
    assert not any("duplicate" in m for m in messages(result)) and len(result.errors) == 2


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules:\n  - name: a\n   schedule: [\n"})
    error = one_error(result)
    assert "a.yaml:3:" in error and "invalid YAML" in error


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty file; a manifest needs a top-level 'schedules:' list"),
        ("# only a comment\n", "empty file"),
        ("- a\n- b\n", "document is array, not a mapping"),
        ("just text\n", "document is string, not a mapping"),
        ("name: a\n", "not a schedule manifest: no top-level 'schedules:' list (found keys: name)"),
        (b"\x7fELF\x02\x01\x00\x00binary", "binary file"),
        (b"schedules: []\n\xff\xfe bad", "not UTF-8 text (byte 0xff at offset 14)"),
        ("schedules:\n  a: b\n", "schedules: must be a list, not a mapping"),
    ],
)
def test_unusable_files_give_one_clear_error(tmp_path, content, expected):
    result = load(tmp_path, **{"a.yaml": content})
    assert expected in one_error(result)


def test_huge_file_is_refused_without_reading_it(tmp_path):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(10 * 1024 * 1024)
    result = load_manifests([big], now=NOW)
    assert "10.0 MiB, above the 4 MiB limit" in one_error(result)
    assert MAX_MANIFEST_BYTES < 10 * 1024 * 1024


def test_duplicate_yaml_keys_are_reported(tmp_path):
    result = load(
        tmp_path, **{"a.yaml": "schedules:\n  - name: a\n    name: b\n    schedule: '@daily'\n    task_type: t\n"}
    )
    assert "a.yaml:3:5: error: duplicate key 'name' (first at line 2)" in one_error(result)


def test_yaml_11_booleans_are_reported_with_a_quoting_hint(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: NO, schedule: '@daily', task_type: t}]"})
    assert "must be a string, not true or false (YAML reads the unquoted 'NO' that way; quote it: \"NO\")" in one_error(
        result
    )
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t, payload: {on: 1}}]"})
    assert "key 'on' is read by YAML as bool True" in one_error(result)


def test_payload_and_payload_base64_are_exclusive(tmp_path):
    result = load(
        tmp_path,
        **{"a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t, payload: 1, payload_base64: 'AA=='}]"},
    )
    assert "use only one of 'payload' and 'payload_base64'" in one_error(result)


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_payload_without_json_encoding_is_rejected(tmp_path, value):
    result = load(
        tmp_path, **{"a.yaml": f"schedules: [{{name: a, schedule: '@daily', task_type: t, payload: {{x: [{value}]}}}}]"}
    )
    assert "has no JSON encoding" in one_error(result)


def test_bad_base64_payload(tmp_path):
    result = load(
        tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '@daily', task_type: t, payload_base64: 'aGVsbG8'}]"}
    )
    assert "payload_base64 is not standard padded base64" in one_error(result)


def test_schedule_that_never_fires_is_a_warning(tmp_path):
    result = load(tmp_path, **{"a.yaml": "schedules: [{name: a, schedule: '0 0 30 2 *', task_type: t}]"})
    (problem,) = result.problems
    assert problem.severity is Severity.WARNING and "never fires" in problem.message
    assert not result.errors and len(result.schedules) == 1


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("schedules: [{name: a, schedule: '@daily', task_type: t, payload: *a7}]")
    result = load(tmp_path, **{"a.yaml": "\n".join(lines) + "\n"})
    assert "expands to more than" in one_error(result)


def test_multi_document_files_and_hidden_directories(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": GOOD + "---\nschedules: [{name: other, schedule: '@hourly', task_type: t}]\n---\n",
            ".git/x.yaml": "not: a manifest",
            "notes.txt": "ignored",
        },
    )
    assert messages(result) == []
    assert [s.task.name for s in result.schedules] == ["EMAIL_MONTHLY_UPDATE", "other"]


def test_missing_path_is_reported(tmp_path):
    result = load_manifests([tmp_path / "nope"], now=NOW)
    assert result.missing_paths == (str(tmp_path / "nope"),)
    assert "no such file or directory" in one_error(result)


def test_record_size_limit(tmp_path):
    blob = base64.b64encode(b"x" * 900_000).decode()
    result = load(
        tmp_path, **{"a.yaml": f"schedules: [{{name: a, schedule: '@daily', task_type: t, payload_base64: {blob}}}]"}
    )
    assert "above NATS's default max_payload of 1,048,576 bytes" in one_error(result)


def test_a_payload_whose_task_record_is_too_large_is_an_error_at_its_line(tmp_path):
    # Issue 9 item 10: 700,000 bytes fit the schedule record (933,555 bytes) but not the Task
    # record each fire stores, where the payload is base64-encoded once more (1,244,664 bytes).
    blob = base64.b64encode(b"x" * 700_000).decode()
    text = f"schedules:\n  - name: a\n    schedule: '@every 1s'\n    task_type: t\n    payload_base64: {blob}\n"
    result = load(tmp_path, **{"a.yaml": text})
    error = one_error(result)
    assert error.startswith(f"{tmp_path / 'a.yaml'}:5:21: error: payload of 700,000 bytes makes the task record"), error
    assert "1,244,664 bytes" in error and "max_payload" in error
    fits = base64.b64encode(b"x" * 580_000).decode()
    assert messages(load(tmp_path, **{"a.yaml": text.replace(blob, fits)})) == []


def test_payload_sensitive_on_the_schedule_or_from_defaults(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": "defaults: {task_type: t, payload_sensitive: true}\n"
            "schedules: [{name: a, schedule: '@daily', payload: 1},"
            " {name: b, schedule: '@daily', payload_sensitive: false}]",
            "b.yaml": "schedules: [{name: c, schedule: '@daily', task_type: t, payload_sensitive: true}, "
            "{name: d, schedule: '@daily', task_type: t}]",
        },
    )
    assert messages(result) == []
    assert {s.task.name: s.payload_sensitive for s in result.schedules} == {
        "a": True,
        "b": False,
        "c": True,
        "d": False,
    }


@pytest.mark.parametrize("value", ["'true'", "1", "yes", "null"])
def test_payload_sensitive_must_be_a_boolean(tmp_path, value):
    result = load(
        tmp_path,
        **{"a.yaml": f"schedules: [{{name: a, schedule: '@daily', task_type: t, payload_sensitive: {value}}}]"},
    )
    assert "payload_sensitive" in one_error(result) and result.schedules == ()


def test_suspend_and_its_reason_on_the_schedule_or_from_defaults(tmp_path):
    result = load(
        tmp_path,
        **{
            "a.yaml": "defaults: {task_type: t, suspend: true, suspend_reason: migration}\n"
            "schedules: [{name: a, schedule: '@daily'}, {name: b, schedule: '@daily', suspend: false,"
            " suspend_reason: ''}]",
            "b.yaml": "schedules: [{name: c, schedule: '@daily', task_type: t, suspend: true}]",
        },
    )
    assert messages(result) == []
    assert {s.task.name: (s.suspend, s.suspend_reason) for s in result.schedules} == {
        "a": (True, "migration"),
        "b": (False, ""),
        "c": (True, ""),
    }


@pytest.mark.parametrize("value", ["'true'", "yes", "on"])
def test_suspend_must_be_a_boolean(tmp_path, value):
    result = load(
        tmp_path, **{"a.yaml": f"schedules: [{{name: a, schedule: '@daily', task_type: t, suspend: {value}}}]"}
    )
    assert "suspend" in one_error(result) and result.schedules == ()


def test_a_reason_without_suspend_is_a_warning_naming_the_line(tmp_path):
    result = load(
        tmp_path, **{"a.yaml": "schedules:\n- {name: a, schedule: '@daily', task_type: t, suspend_reason: x}"}
    )
    (problem,) = result.problems
    assert not problem.is_error and problem.location.line == 2
    assert "suspend_reason has no effect without suspend: true" in problem.message
    assert [s.suspend for s in result.schedules] == [False]
