"""The catch-up floor of a group that may contain Go schedulers (scheduler/group.py), pure."""

from __future__ import annotations

from ajc_gitops.codec import decode_member, encode_member
from ajc_gitops.model import MemberRecord
from ajc_gitops.scheduler.group import GroupTiming, GroupView

S = 1_000_000_000
GO = GroupTiming.for_ttl(10.0, 7.5)  # Go's: TTL 10 s, interval 7.5 s, request timeout 5 s


def view() -> GroupView:
    return GroupView("py-a", GO)


def test_a_group_that_never_saw_go_reaches_back_the_whole_window():
    v = view()
    v.learn([MemberRecord("py-b", 0)])
    v.poll_ok(None, 100 * S)
    assert not v.poll_ok("py-b", 101 * S)  # has a marker: one of ours
    assert not v.mixed and v.floor_ns(200 * S) is None


def test_a_holder_without_a_marker_is_a_go_member():
    v = view()
    assert v.poll_ok("sched-1", 101 * S)
    assert v.mixed and v.floor_ns(200 * S) is not None


def test_go_holder_moves_the_floor_past_its_last_possible_fire():
    v = view()
    v.poll_ok(None, 100 * S)
    assert v.poll_ok("go-sched", 101 * S)
    v.poll_ok(None, 112 * S)
    # seen at 101: refresh up to one poll later, a fire up to interval + timeout after, + skew.
    assert v.floor_ns(130 * S) == 101 * S + int((1 + 7.5 + 5 + 2) * S)
    assert v.go_leader == "go-sched"


def test_knowledge_starts_with_the_poll_chain():
    v = view()
    v.learn([MemberRecord("old", 0, "go-sched", 50 * S)])  # some member once saw Go
    assert v.mixed
    assert v.floor_ns(300 * S) == 300 * S  # not observing: no catch-up at all
    v.poll_ok(None, 200 * S)
    # An expired Go key refreshed >= ttl before 200 s: its fires end by 200 + 7.5 + 5 - 10 + 2.
    assert v.floor_ns(300 * S) == 200 * S + int(4.5 * S)
    v.poll_failed()
    assert v.floor_ns(300 * S) == 300 * S
    v.poll_ok(None, 250 * S)
    v.poll_ok(None, 260 * S)  # a gap longer than 0.8 x ttl restarts the chain
    assert v.floor_ns(300 * S) == 260 * S + int(4.5 * S)


def test_markers_round_trip_and_unreadable_ones_are_conservative():
    record = MemberRecord("py-a", 5 * S, "go-sched", 77 * S)
    assert decode_member("ajc_gitops.schedulers.py-a", encode_member(record)) == record
    odd = decode_member("ajc_gitops.schedulers.x", b"not json")
    assert odd.name == "x" and odd.go_horizon_ns is not None


def test_handled_progress_applies_only_to_records_the_leader_knew():
    v = view()
    v.learn([MemberRecord("py-b", 0, handled_through_s=1000, handled_revision=50)])
    v.learn([MemberRecord("py-c", 0, handled_through_s=900, handled_revision=80)])
    assert v.handled_through(40) == 1000
    assert v.handled_through(60) == 900  # py-b never saw revision 60
    assert v.handled_through(81) is None
    assert v.record(0).handled_through_s is None  # only our own progress goes in our marker


def test_the_marker_says_since_when_a_go_member_leads_and_survives_a_round_trip():
    v = view()
    v.poll_ok(None, 100 * S)
    v.poll_ok("go-1", 101 * S)
    v.poll_ok("go-1", 102 * S)
    assert v.go_leader_since_ns == 101 * S  # the first sighting, not the latest
    v.poll_ok("go-2", 130 * S)
    assert v.go_leader_since_ns == 130 * S  # a new Go leader
    v.leading_since_ns = 140 * S
    record = v.record(1)
    assert (record.go_leader_since_ns, record.leading_since_ns) == (130 * S, 140 * S)
    assert decode_member("ajc_gitops.schedulers.py-a", encode_member(record)) == record
    # A member that never led nor saw Go writes the bytes it wrote before these fields existed.
    assert b"since" not in encode_member(MemberRecord("py-b", 5))


def test_unread_markers_keep_what_our_own_polls_vouch_for():
    v = view()
    assert v.floor_unread_ns(300 * S) == 300 * S  # no chain: no catch-up
    v.poll_ok(None, 100 * S)
    v.poll_ok("py-a", 101 * S)
    # A Go leader recorded by another member since our last read ended before our chain did.
    assert v.floor_unread_ns(300 * S) == 100 * S + int(4.5 * S)
    assert v.poll_ok("go-sched", 102 * S)
    assert v.floor_unread_ns(300 * S) == v.floor_ns(300 * S) == 102 * S + int((1 + 7.5 + 5 + 2) * S)
    v.poll_failed()
    assert v.floor_unread_ns(300 * S) == 300 * S
