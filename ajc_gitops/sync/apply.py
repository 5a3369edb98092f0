"""Execute a ``Plan`` through the ``Store``, exactly as it was computed: nothing is recomputed.

Order of work:

1. refuse a plan with blocking notices, or one that deletes every managed schedule (an empty
   or mis-pathed manifest directory) unless ``allow_empty``;
2. stale check: re-read every key the plan touches; any revision that moved since the plan was
   made raises ``StalePlanError`` naming the keys;
3. create the asyncjobs buckets if they are missing, as Go would (contract §1), never
   altering existing ones;
4. four pipelined phases, each one ``write_many`` batch:
   markers of CREATE/UPDATE/ADOPT/SUSPEND/RESUME (so a crash never leaves a record we wrote
   unowned, nor a suspended schedule deleted without its definition kept),
   revision-guarded Deletes of UPDATE/ADOPT-with-changes/DELETE records and of a live record
   being suspended,
   Creates of CREATE/UPDATE/ADOPT/RESUME (over the tombstone revision: contract §3, a change is
   Delete then Create, never Put or Update over a live schedule),
   and finally the marker Deletes of DELETE.

A conflict or failure of one key stops that key's chain only; the result lists what was applied
and what was not, with the reason. Every write is revision-guarded, so rerunning plan and apply
after a failure converges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ajc_gitops.errors import ApplyRefused, StalePlanError
from ajc_gitops.names import CONFIG_BUCKET, marker_key
from ajc_gitops.plan.model import Action, Change, NoticeKind, Plan
from ajc_gitops.state import Outcome, Snapshot, WriteOp
from ajc_gitops.store import Store
from ajc_gitops.sync.state import read_state

__all__ = ["ApplyResult", "apply_plan", "check_allowed", "check_not_stale", "work"]

_MUTATING = (Action.CREATE, Action.UPDATE, Action.ADOPT, Action.RESUME)
_LISTED = 10  # keys named in one-line messages before "and N more"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    applied: tuple[str, ...]  # schedule names whose every step succeeded
    not_applied: tuple[tuple[str, str], ...]  # (name, why), in plan order
    created_buckets: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.not_applied


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def check_allowed(plan: Plan, *, allow_empty: bool) -> None:
    """Refusals that need no network: blocking notices and the empty-manifest guard."""
    blocked = plan.blocked
    if blocked:
        first = blocked[0]
        more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
        raise ApplyRefused(
            f"refusing to apply: {first.key}: {first.message}{more}; resolve the blocking notices "
            "shown in the plan (e.g. with --adopt NAME) and plan again"
        )
    # Every schedule that has a marker now is one we manage; deleting all of them at once is
    # what an empty or mis-pathed manifest directory looks like (even if it adds others).
    deletes = plan.to_destroy
    managed = sum(1 for c in plan.changes if c.marker_revision is not None)
    if deletes and deletes == managed and not allow_empty:
        raise ApplyRefused(
            f"refusing to apply: the plan deletes all {deletes} managed schedule(s) and keeps none of them "
            "(an empty or mis-pathed manifest directory?); pass --allow-empty if that is intended"
        )


def _orphan(name: str, key: str, revision: int | None) -> Change:
    # A marker whose record is gone and whose name left Git: with --prune the plan says
    # "apply removes it" (a notice, not a change), so apply deletes just the marker.
    return Change(Action.DELETE, name, None, None, revision, desired=None, live=None)


def work(plan: Plan) -> list[tuple[Change, bool]]:
    """Every change apply writes for, with whether its record revision is checked exactly.

    Besides the create/update/adopt/delete changes: a no-op whose marker the plan refreshes
    (drift with unchanged fields), and with --prune each orphan marker."""
    items = [(c, True) for c in plan.changes if c.action is not Action.NOOP or c.marker_value is not None]
    if plan.prune:
        named = {c.name for c in plan.changes}
        items += [
            (_orphan(n.name, n.key, n.revision), False)
            for n in plan.notices
            if n.kind is NoticeKind.ORPHAN_MARKER and n.name not in named and n.key == marker_key(n.name)
        ]
    return items


def _revision_text(revision: int | None, tombstone: int | None) -> str:
    if revision is not None:
        return f"revision {revision}"
    return f"deleted at revision {tombstone}" if tombstone is not None else "absent"


def _moved(snap: Snapshot, key: str, revision: int | None, tombstone: int | None, exact: bool) -> str | None:
    now_rev = snap.live[key].revision if key in snap.live else None
    now_tomb = snap.tombstone_revision(key)
    # Absent when planned: still absent and, when a Create will expect it, over the same
    # tombstone (contract §3: KV Create expects the tombstone's revision).
    absent_moved = now_rev is not None or (exact and now_tomb != tombstone)
    moved = now_rev != revision if revision is not None else absent_moved
    if not moved:
        return None
    return f"{key} ({_revision_text(revision, tombstone)} → {_revision_text(now_rev, now_tomb)})"


def stale_keys(plan: Plan, records: Snapshot, markers: Snapshot) -> list[str]:
    """``key (planned → now)`` for every key apply would write whose revision moved."""
    stale = []
    for change, exact in work(plan):
        found = _moved(records, change.key, change.record_revision, change.tombstone_revision, exact)
        if found is not None:
            stale.append(found)
        mkey = marker_key(change.name)
        found = _moved(markers, mkey, change.marker_revision, change.marker_tombstone_revision, exact)
        if found is not None:
            stale.append(found)
    return stale


async def check_not_stale(store: Store, plan: Plan) -> None:
    """Raise ``StalePlanError`` naming every key that changed since the plan was made."""
    records, markers = await read_state(store, plan.bucket)
    stale = stale_keys(plan, records, markers)
    if stale:
        raise StalePlanError(
            f"{store.server}: the plan is stale, {len(stale)} key(s) changed since it was made: "
            f"{_names(stale)}; run plan again and review the new plan"
        )


@dataclass(slots=True)
class _Chain:
    """One schedule's steps; ``failed`` stops the rest."""

    change: Change
    tombstone: int | None
    failed: str | None = None
    done: list[str] = field(default_factory=list)


def _fail(chain: _Chain, outcome: Outcome, step: str) -> None:
    reason = outcome.error or outcome.status
    if outcome.status == "conflict":
        reason += "; it changed since the plan was made, run plan again"
    if chain.done and "record deleted" in chain.done and step == "create":
        reason = (
            f"the old record was deleted but the Create failed, so the schedule is absent until the "
            f"next apply: {reason}"
        )
    chain.failed = reason


async def _phase(
    store: Store,
    bucket: str,
    chains: Iterable[_Chain],
    step: str,
    build: Callable[[_Chain], WriteOp | None],
) -> None:
    todo: list[tuple[_Chain, WriteOp]] = []
    for chain in chains:
        if chain.failed is None and (op := build(chain)) is not None:
            todo.append((chain, op))
    if not todo:
        return
    outcomes = await store.write_many([op for _, op in todo], bucket=bucket)
    for (chain, _), outcome in zip(todo, outcomes, strict=True):
        if outcome.status == "ok":
            chain.done.append(step)
            if step == "record deleted":
                chain.tombstone = outcome.revision
        else:
            _fail(chain, outcome, step)


def _marker_write(chain: _Chain) -> WriteOp | None:
    c = chain.change
    if c.action is Action.DELETE or c.marker_value is None:
        return None
    key = marker_key(c.name)
    if c.marker_revision is not None:
        # The marker is ours, so an Update is safe here (Go never reads it, contract §2.1).
        return WriteOp.update(key, c.marker_value, revision=c.marker_revision)
    return WriteOp.create(key, c.marker_value, tombstone_revision=c.marker_tombstone_revision)


def _record_delete(chain: _Chain) -> WriteOp | None:
    c = chain.change
    changes_record = c.action in (Action.DELETE, Action.SUSPEND) or (c.action in _MUTATING and c.value is not None)
    if not changes_record or c.record_revision is None:
        return None
    return WriteOp.delete(c.key, revision=c.record_revision)


def _record_create(chain: _Chain) -> WriteOp | None:
    c = chain.change
    if c.action not in _MUTATING or c.value is None:
        return None
    return WriteOp.create(c.key, c.value, tombstone_revision=chain.tombstone)


def _marker_delete(chain: _Chain) -> WriteOp | None:
    c = chain.change
    if c.action is not Action.DELETE or c.marker_revision is None:
        return None
    return WriteOp.delete(marker_key(c.name), revision=c.marker_revision)


async def apply_plan(
    store: Store,
    plan: Plan,
    *,
    allow_empty: bool = False,
    replicas: int = 1,
    memory: bool = False,
) -> ApplyResult:
    """Apply exactly ``plan``; see the module docstring for the order and the guarantees."""
    check_allowed(plan, allow_empty=allow_empty)
    await check_not_stale(store, plan)
    chains = [_Chain(c, c.tombstone_revision) for c, _ in work(plan)]
    if not chains:
        return ApplyResult((), ())
    created: list[str] = []
    if plan.bucket == CONFIG_BUCKET:
        # Contract §1: create what is missing with Go's settings; existing buckets stay as they are.
        created = await store.ensure_buckets(replicas=replicas, memory=memory)
    await _phase(store, plan.bucket, chains, "marker written", _marker_write)
    await _phase(store, plan.bucket, chains, "record deleted", _record_delete)
    await _phase(store, plan.bucket, chains, "create", _record_create)
    await _phase(store, plan.bucket, chains, "marker deleted", _marker_delete)
    return ApplyResult(
        applied=tuple(ch.change.name for ch in chains if ch.failed is None),
        not_applied=tuple((ch.change.name, ch.failed) for ch in chains if ch.failed is not None),
        created_buckets=tuple(created),
    )
