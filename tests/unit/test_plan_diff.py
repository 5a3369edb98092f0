"""compute_plan: manifests + store snapshots -> changes and notices (contract §2, §3)."""

from __future__ import annotations

import base64
import json

import pytest

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker, record_digest
from ajc_gitops.gowire.gotime import format_rfc3339nano, from_datetime
from ajc_gitops.manifest.load import PayloadForm
from ajc_gitops.plan.fields import SENSITIVE_TEXT
from ajc_gitops.plan.model import Action, Change, FieldChange, NoticeKind
from tests.unit.plan_factories import NOW, managed, marker, plan_for, record, task, want


def test_absent_schedule_is_created_with_exact_bytes_marker_and_tombstone_revision():
    t = task("EMAIL", deadline_ns=43_200 * 10**9)
    plan = plan_for([want(t)], dead={"EMAIL": 42}, dead_markers={"EMAIL": 43})
    (change,) = plan.changes
    assert change.action is Action.CREATE
    assert (change.record_revision, change.tombstone_revision) == (None, 42)
    assert (change.marker_revision, change.marker_tombstone_revision) == (None, 43)
    assert change.value is not None
    written, _ = codec.decode_or_raise(change.value)
    assert change.value == codec.encode_scheduled_task(written)  # codec bytes, Go key order
    assert written.name == "EMAIL" and written.deadline_ns == 43_200 * 10**9
    assert format_rfc3339nano(written.created_at) == format_rfc3339nano(from_datetime(NOW))
    assert change.value.endswith(b',"created_at":"2026-11-27T09:00:00.123456Z"}')
    mark = decode_marker(change.marker_value or b"")
    assert mark.sha256 == record_digest(change.value)
    assert mark.source == "schedules/app.yaml:3:5" and mark.applied_at == plan.created_at
    assert FieldChange("schedule", None, "0 0 1 * *") in change.fields
    assert FieldChange("deadline", None, "12h0m0s") in change.fields
    assert change.fires is not None and change.fires.utc == (
        "2026-12-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        "2027-02-01T00:00:00Z",
    )
    assert change.fires.zone is None and change.fires.local == ()
    assert (plan.to_add, plan.to_change, plan.to_destroy) == (1, 0, 0)
    assert not change.drift


def test_identical_managed_schedule_is_a_noop_without_value_or_fires():
    t = task("EMAIL")
    live, markers = managed(t)
    (change,) = plan_for([want(t)], live, markers).changes
    assert change.action is Action.NOOP
    assert (change.value, change.marker_value, change.fires, change.fields) == (None, None, None, ())
    assert change.record_revision == 100 and change.marker_revision == 500
    assert change.live is not None and format_rfc3339nano(change.live.created_at) == "2026-07-22T08:39:24.1234567Z"
    assert not change.drift


def test_created_at_is_ignored():
    t = task("EMAIL")
    live = {"EMAIL": record(t, created="2020-01-01T00:00:00+02:00")}
    markers = {"EMAIL": marker("EMAIL", live["EMAIL"])}
    (change,) = plan_for([want(t)], live, markers).changes
    assert change.action is Action.NOOP


def test_changed_schedule_is_an_update_with_field_before_and_after():
    live, markers = managed(task("EMAIL", schedule="0 0 1 * *"))
    (change,) = plan_for([want(task("EMAIL", schedule="0 0 2 * *"))], live, markers).changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("schedule", "0 0 1 * *", "0 0 2 * *"),)
    assert change.record_revision == 100 and change.value is not None and change.marker_value is not None
    assert change.fires is not None and change.fires.utc[0] == "2026-12-02T00:00:00Z"
    assert not change.drift


def test_update_shows_payload_deadline_and_tries_as_text():
    live, markers = managed(task("EMAIL", payload=b"\x00\x01", deadline_ns=0, max_tries=3))
    desired = task("EMAIL", payload=b'{"a":1}', deadline_ns=90 * 10**9, max_tries=5)
    (change,) = plan_for([want(desired)], live, markers).changes
    assert change.fields == (
        FieldChange("payload", "base64:AAE=", '{"a":1}'),
        FieldChange("deadline", None, "1m30s"),
        FieldChange("max_tries", "3", "5"),
    )


def _live_payload(payload: bytes) -> tuple[dict[str, bytes], dict[str, bytes]]:
    return managed(task("EMAIL", payload=payload))


def test_payload_key_order_and_whitespace_are_not_a_change():
    live, markers = _live_payload(b'{ "b": [1, 2],\n  "a": {"y": null, "x": "s"} }')
    desired = task("EMAIL", payload=codec.go_json_marshal({"a": {"x": "s", "y": None}, "b": [1, 2]}))
    (change,) = plan_for([want(desired)], live, markers).changes
    assert change.action is Action.NOOP


@pytest.mark.parametrize(
    ("live_payload", "desired_payload"),
    [
        (b'{"a":1.0}', b'{"a":1}'),
        (b'{"a":true}', b'{"a":1}'),
        (b'{"a":1}', b'{"a":true}'),
        (b'{"a":"1"}', b'{"a":1}'),
        (b"[1e2]", b"[100]"),
    ],
    ids=["1.0-vs-1", "true-vs-1", "1-vs-true", "string-vs-number", "exponent"],
)
def test_json_values_are_compared_with_their_types(live_payload: bytes, desired_payload: bytes):
    live, markers = _live_payload(live_payload)
    (change,) = plan_for([want(task("EMAIL", payload=desired_payload))], live, markers).changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("payload", live_payload.decode(), desired_payload.decode()),)


def test_base64_payload_is_compared_byte_exactly():
    live, markers = _live_payload(b'{"a": 1}')
    desired = task("EMAIL", payload=b'{"a":1}')
    (change,) = plan_for([want(desired, PayloadForm.BASE64)], live, markers).changes
    assert change.action is Action.UPDATE
    assert change.fields[0].field == "payload"


def test_null_payload_differs_from_json_null_and_empty():
    live, markers = _live_payload(b"")
    (change,) = plan_for([want(task("EMAIL", payload=None))], live, markers).changes
    assert change.fields == (FieldChange("payload", "base64:", None),)
    live, markers = managed(task("EMAIL", payload=None))
    (change,) = plan_for([want(task("EMAIL", payload=b"null"))], live, markers).changes
    assert change.fields == (FieldChange("payload", None, "null"),)


def test_legacy_capitalised_record_is_read_as_go_reads_it():
    legacy = (
        b'{"Name":"EMAIL","Schedule":"0 0 1 * *","Queue":"EMAIL","Task_Type":"email:monthly",'
        b'"Payload":null,"Deadline":0,"MaxTries":10,"created_at":"2022-02-16T10:00:00Z"}'
    )
    plan = plan_for([want(task("EMAIL"))], {"EMAIL": legacy}, {"EMAIL": marker("EMAIL", legacy)})
    (change,) = plan.changes
    # Go binds Deadline by case folding but not MaxTries: max_tries reads as 0 (contract §2.3).
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("max_tries", "0", "10"),)
    (notice,) = plan.notices
    assert notice.kind is NoticeKind.LEGACY_RECORD and "MaxTries" in notice.message
    assert notice.key == "scheduled_tasks.EMAIL" and notice.revision == 100


def test_corrupt_record_is_a_notice_with_gos_error_and_never_dropped():
    corrupt = b'{"name":"EMAIL","deadline":"12h"}'
    plan = plan_for([], {"EMAIL": corrupt, "BROKEN": b"{not json"})
    kinds = sorted((n.key, n.kind.value) for n in plan.notices)
    assert kinds == [
        ("scheduled_tasks.BROKEN", "invalid_record"),
        ("scheduled_tasks.BROKEN", "unmanaged"),
        ("scheduled_tasks.EMAIL", "invalid_record"),
        ("scheduled_tasks.EMAIL", "unmanaged"),
    ]
    messages = {n.key: n.message for n in plan.notices if n.kind is NoticeKind.INVALID_RECORD}
    assert (
        "json: cannot unmarshal string into Go struct field ScheduledTask.deadline" in messages["scheduled_tasks.EMAIL"]
    )
    assert "invalid character" in messages["scheduled_tasks.BROKEN"]
    assert plan.changes == ()


def test_corrupt_managed_record_in_git_is_rewritten():
    corrupt = b'{"name":"EMAIL",'
    plan = plan_for([want(task("EMAIL"))], {"EMAIL": corrupt}, {"EMAIL": marker("EMAIL", b"old")})
    (change,) = plan.changes
    assert change.action is Action.UPDATE and change.drift and change.live is None
    assert change.fields[0].field == "record" and (change.fields[0].before or "").startswith("undecodable: ")
    assert [n.kind for n in plan.notices] == [NoticeKind.INVALID_RECORD]


def test_name_mismatch_is_reported_and_a_managed_one_is_rewritten():
    other = record(task("OTHER"))
    plan = plan_for([want(task("EMAIL"))], {"EMAIL": other}, {"EMAIL": marker("EMAIL", other)})
    (change,) = plan.changes
    assert change.action is Action.UPDATE
    assert change.fields == (FieldChange("name", "OTHER", "EMAIL"),)
    (notice,) = plan.notices
    assert notice.kind is NoticeKind.INVALID_RECORD and "'OTHER' differs from the key" in notice.message


def test_hand_made_schedule_in_git_blocks_until_adopted():
    live = {"EMAIL": record(task("EMAIL", queue="OTHER"))}
    plan = plan_for([want(task("EMAIL"))], live)
    assert plan.changes == ()
    (notice,) = plan.blocked
    assert notice.kind is NoticeKind.UNMANAGED_CONFLICT and notice.blocking
    assert "--adopt EMAIL" in notice.message
    assert notice.source == "schedules/app.yaml:3:5" and notice.revision == 100


def test_adopt_takes_over_and_rewrites_when_fields_differ():
    live = {"EMAIL": record(task("EMAIL", queue="OTHER"))}
    plan = plan_for([want(task("EMAIL"))], live, adopt=frozenset({"EMAIL"}))
    (change,) = plan.changes
    assert change.action is Action.ADOPT and change.fields == (FieldChange("queue", "OTHER", "EMAIL"),)
    assert change.value is not None and change.fires is not None
    assert decode_marker(change.marker_value or b"").sha256 == record_digest(change.value)
    assert plan.blocked == () and plan.to_change == 1


def test_adopting_an_identical_schedule_writes_only_the_marker():
    live = {"EMAIL": record(task("EMAIL"))}
    (change,) = plan_for([want(task("EMAIL"))], live, adopt=frozenset({"EMAIL"})).changes
    assert change.action is Action.ADOPT and change.value is None and change.fields == ()
    assert decode_marker(change.marker_value or b"").sha256 == record_digest(live["EMAIL"])


def test_managed_schedule_gone_from_git_is_deleted_only_with_prune():
    live, markers = managed(task("OLD"))
    plan = plan_for([], live, markers, prune=True)
    (change,) = plan.changes
    assert change.action is Action.DELETE
    assert (change.record_revision, change.marker_revision) == (100, 500)
    assert FieldChange("schedule", "0 0 1 * *", None) in change.fields
    assert change.source == "schedules/app.yaml:3:5"
    assert plan.to_destroy == 1 and plan.notices == ()

    kept = plan_for([], live, markers, prune=False)
    (change,) = kept.changes
    assert change.action is Action.NOOP and change.value is None
    (notice,) = kept.notices
    assert notice.kind is NoticeKind.NOT_PRUNED and "--prune" in notice.message
    assert not kept.has_changes


def test_prune_never_touches_hand_made_schedules():
    plan = plan_for([], {"HAND": record(task("HAND"))}, prune=True)
    assert plan.changes == ()
    (notice,) = plan.notices
    assert notice.kind is NoticeKind.UNMANAGED and not notice.blocking


def test_drift_is_flagged_when_live_bytes_are_not_what_was_written():
    written = record(task("EMAIL"))
    by_hand = record(task("EMAIL", queue="HAND"))
    (change,) = plan_for([want(task("EMAIL"))], {"EMAIL": by_hand}, {"EMAIL": marker("EMAIL", written)}).changes
    assert change.action is Action.UPDATE and change.drift
    assert change.fields == (FieldChange("queue", "HAND", "EMAIL"),)


def test_drifted_but_equal_record_is_a_noop_that_refreshes_its_marker():
    readded = record(task("EMAIL"), created="2026-11-20T00:00:00Z")
    plan = plan_for([want(task("EMAIL"))], {"EMAIL": readded}, {"EMAIL": marker("EMAIL", record(task("EMAIL")))})
    (change,) = plan.changes
    assert change.action is Action.NOOP and change.drift and change.value is None
    assert decode_marker(change.marker_value or b"").sha256 == record_digest(readded)
    assert not plan.has_changes and plan.drifted == (change,)


def test_record_deleted_outside_git_is_recreated_as_drift():
    plan = plan_for([want(task("EMAIL"))], {}, {"EMAIL": marker("EMAIL", b"x")}, dead={"EMAIL": 7})
    (change,) = plan.changes
    assert change.action is Action.CREATE and change.drift
    assert (change.tombstone_revision, change.marker_revision) == (7, 500)


def test_marker_without_record_or_manifest_is_an_orphan():
    for prune in (False, True):
        plan = plan_for([], {}, {"GONE": marker("GONE", b"x")}, prune=prune)
        assert plan.changes == ()
        (notice,) = plan.notices
        assert notice.kind is NoticeKind.ORPHAN_MARKER
        assert notice.key == "ajc_gitops.managed.GONE" and notice.revision == 500
        assert ("apply removes it" in notice.message) is prune


def test_unreadable_marker_still_counts_as_managed():
    live = {"EMAIL": record(task("EMAIL"))}
    plan = plan_for([want(task("EMAIL"))], live, {"EMAIL": b"garbage"})
    (change,) = plan.changes
    assert change.action is Action.NOOP and change.drift and change.marker_value is not None
    (notice,) = plan.notices
    assert notice.kind is NoticeKind.INVALID_RECORD and notice.key == "ajc_gitops.managed.EMAIL"


def test_multi_token_keys_are_skipped_with_a_notice():
    plan = plan_for([], {"a.b": record(task("a")), "c": record(task("c"))}, {"x.y": b"{}"})
    skipped = [n for n in plan.notices if "ignored" in n.message]
    assert sorted(n.key for n in skipped) == ["ajc_gitops.managed.x.y", "scheduled_tasks.a.b"]
    assert all(n.kind is NoticeKind.INVALID_RECORD for n in skipped)
    assert [n.key for n in plan.notices if n.kind is NoticeKind.UNMANAGED] == ["scheduled_tasks.c"]


def test_fires_for_cron_tz_show_utc_and_the_zone():
    t = task("BERLIN", schedule="CRON_TZ=Europe/Berlin 0 9 * * *")
    (change,) = plan_for([want(t)]).changes
    assert change.fires is not None
    assert change.fires.utc == ("2026-11-28T08:00:00Z", "2026-11-29T08:00:00Z", "2026-11-30T08:00:00Z")
    assert change.fires.zone == "Europe/Berlin"
    assert change.fires.local[0] == "2026-11-28T09:00:00+01:00"


def test_schedule_that_never_fires_has_no_fire_times():
    (change,) = plan_for([want(task("FEB30", schedule="0 0 30 2 *"))]).changes
    assert change.fires is not None and change.fires.utc == ()


def test_changes_are_sorted_and_plan_carries_its_context():
    plan = plan_for([want(task("b")), want(task("a"))])
    assert [c.name for c in plan.changes] == ["a", "b"]
    assert plan.server == "nats://127.0.0.1:4222" and plan.bucket == "CHORIA_AJ_CONFIGURATION"
    assert plan.created_at == "2026-11-27T09:00:00.123456Z"


def test_duplicate_desired_names_are_a_programming_error():
    with pytest.raises(ValueError, match="duplicate"):
        plan_for([want(task("A")), want(task("A"))])


def test_fast_path_agrees_with_the_full_decoder():
    # Records that merely look canonical must still go through Go-exact decoding.
    t = task("EMAIL", payload=base64.b64decode("AAE="))
    for live in (
        record(t),
        record(t)[:-1] + b',"created_at":"2026-01-01T00:00:00Z"}',  # a second created_at wins
        record(t)[:-2] + b'Z"}',  # a time Go rejects after a valid-looking prefix
        record(t).replace(b'"created_at":"', b'"created_at":"x'),  # a time Go rejects
    ):
        plan = plan_for([want(t, PayloadForm.BASE64)], {"EMAIL": live}, {"EMAIL": marker("EMAIL", live)})
        decoded = codec.decode_scheduled_task(live)
        (change,) = plan.changes
        if decoded.error is None:
            assert change.live == decoded.task
        else:
            assert change.live is None and change.action is Action.UPDATE


def test_marker_json_is_compact_and_stable():
    data = marker("EMAIL", b"rec")
    assert json.loads(data)["name"] == "EMAIL"
    assert b" " not in data and list(json.loads(data)) == ["name", "sha256", "source", "applied_at"]


# -- sensitive payloads -----------------------------------------------------------------------

SECRET = b'{"token":"s3cr3t"}'


def _texts(change: Change) -> list[str | None]:
    return [text for f in change.fields for text in (f.before, f.after)]


def test_a_sensitive_payload_is_masked_on_create_and_the_marker_remembers():
    plan = plan_for([want(task("S", payload=SECRET), sensitive=True)])
    [change] = plan.changes
    assert change.action is Action.CREATE and change.sensitive
    assert FieldChange("payload", None, SENSITIVE_TEXT) in change.fields
    assert not any("s3cr3t" in (t or "") for t in _texts(change))
    assert change.desired is not None and change.desired.payload == SECRET  # what apply writes is unchanged
    assert decode_marker(change.marker_value or b"").sensitive


def test_a_sensitive_update_shows_that_the_payload_changed_not_how():
    live, markers = managed(task("S", payload=b'{"token":"old"}'))
    [change] = plan_for([want(task("S", payload=SECRET, max_tries=3), sensitive=True)], live, markers).changes
    assert change.action is Action.UPDATE
    assert change.fields == (
        FieldChange("payload", SENSITIVE_TEXT, SENSITIVE_TEXT),
        FieldChange("max_tries", "10", "3"),
    )


def test_adding_or_removing_a_sensitive_payload_keeps_the_absent_side():
    live, markers = managed(task("S"))
    [added] = plan_for([want(task("S", payload=SECRET), sensitive=True)], live, markers).changes
    assert added.fields == (FieldChange("payload", None, SENSITIVE_TEXT),)


def test_a_pruned_schedule_is_masked_by_its_marker_alone():
    t = task("S", payload=SECRET)
    live = {"S": record(t)}
    markers = {"S": marker("S", live["S"], sensitive=True)}
    [change] = plan_for([], live, markers, prune=True).changes
    assert change.action is Action.DELETE and change.sensitive
    assert FieldChange("payload", SENSITIVE_TEXT, None) in change.fields
    assert FieldChange("queue", "EMAIL", None) in change.fields


def test_unmarking_in_git_still_masks_that_plan():
    t = task("S", payload=b'{"token":"old"}')
    live = {"S": record(t)}
    markers = {"S": marker("S", live["S"], sensitive=True)}
    [change] = plan_for([want(task("S", payload=SECRET))], live, markers).changes
    assert change.sensitive and change.fields == (FieldChange("payload", SENSITIVE_TEXT, SENSITIVE_TEXT),)
    assert not decode_marker(change.marker_value or b"").sensitive


@pytest.mark.parametrize("now_sensitive", [True, False])
def test_a_flag_only_change_refreshes_the_marker_and_nothing_else(now_sensitive: bool):
    t = task("S", payload=SECRET)
    live = {"S": record(t)}
    markers = {"S": marker("S", live["S"], sensitive=not now_sensitive)}
    [change] = plan_for([want(t, sensitive=now_sensitive)], live, markers).changes
    assert change.action is Action.NOOP and not change.drift and change.value is None and change.fields == ()
    refreshed = decode_marker(change.marker_value or b"")
    assert refreshed.sensitive is now_sensitive and refreshed.sha256 == record_digest(live["S"])


def test_same_flag_writes_no_marker():
    t = task("S", payload=SECRET)
    live = {"S": record(t)}
    markers = {"S": marker("S", live["S"], sensitive=True)}
    [change] = plan_for([want(t, sensitive=True)], live, markers).changes
    assert change.action is Action.NOOP and change.marker_value is None


def test_marker_sensitive_flag_is_written_only_when_true_and_checked():
    plain, flagged = marker("EMAIL", b"rec"), marker("EMAIL", b"rec", sensitive=True)
    assert b"sensitive" not in plain and json.loads(flagged)["sensitive"] is True
    assert decode_marker(flagged).sensitive and not decode_marker(plain).sensitive
    with pytest.raises(MarkerError, match="'sensitive' is not true or false"):
        decode_marker(flagged.replace(b"true", b'"yes"'))
