"""The coalescer: first attempts of coalescible jobs submitted together as AWS Batch array jobs.

SubmitJob is limited to 50 calls a second per account; one array job carries up to 10,000 children.
Messages of one tenant, job type, route (queue, definition, resources, share, priority) and set of
parameter names in a batch form a group; a group short of its type's `array.max_size` whose oldest
job is younger than `array.max_wait_seconds` is sent back to the array queue, delayed by the rest of
its wait. A group of one past its wait goes the single-job way (service/dispatch.py).

Exactly once, by per-job claims. For each array (`policy/arrays.py::array_name`, deterministic):
1. the manifest (S3), then the parts and the meta (adapters/array_items.py), the same on every try;
2. each member's claim: the single job's record_submission write, with the attempt's array name and
   index, only while the job waits for exactly that attempt and no array holds it; a job that moved on
   (cancelled) or that another array holds is a hole;
3. the hold on its submission (one invocation at a time: two resumes of one array would both submit);
4. SubmitJob with arrayProperties.size, after looking for the name on the queue (ListJobs) when any
   claim was an earlier delivery's, so an array Batch accepted but batchplane never recorded is adopted;
   an array Batch refuses is closed on its meta first, then its jobs fail for good;
5. the parent's id on the meta;
6. the children at its holes terminated (their first event would stop them too: state_change.py).
A crash between any two steps returns the batch; the redelivered message finds its job claimed and
resumes that array from its meta and parts, or, not claimed, goes the single-job way (which looks
for an earlier single submission first), so no job is in two arrays and none is submitted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from batchplane.errors import InvalidRequest
from batchplane.lifecycle import transitions
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import DISPATCHABLE_STATUSES, Attempt, Capacity, HistoryEntry
from batchplane.observability import logger, metric
from batchplane.policy.admission import job_type_of
from batchplane.policy.arrays import (
    Member,
    array_name,
    chunks,
    grouped,
    manifest_line,
    manifest_text,
    members_of,
    remaining_wait,
)
from batchplane.policy.outputs import attempt_output_prefix
from batchplane.policy.routing import Route
from batchplane.service.dispatch import dispatch, fail_for_good, queue_name, route_of
from batchplane.service.ports import ArrayMember, ArrayMeta, BatchRefused, Claim, Ports

# The worker's contract (workers/README.md): where the children's lines are, and the array's name.
MANIFEST_VARIABLE = "BATCHPLANE_MANIFEST"
ARRAY_VARIABLE = "BATCHPLANE_ARRAY"
# Claims in flight at once: within botocore's pool of 10 connections a client, leaving room for the
# rest of the invocation's calls.
CLAIMS_AT_ONCE = 8
# How long an invocation holds an array's SubmitJob: Lambda's longest timeout, so no invocation
# outlives its hold; a holder that died is followed by its redelivery (the queue's visibility timeout,
# 30 min) or the sweeper's next look.
SUBMISSION_HOLD = timedelta(minutes=15)


@dataclass(frozen=True)
class Arrival:
    """One message of the batch: its SQS id (for the partial batch response) and receive count."""

    message_id: str
    message: DispatchMessage
    receive_count: int = 1

    @property
    def suspect(self) -> bool:
        """Seen before (a redelivery, or the sweeper's look-first): its job may be claimed already."""
        return self.receive_count > 1 or self.message.look_first


def coalesce(ports: Ports, arrivals: Sequence[Arrival]) -> set[str]:
    """Submit, defer or dispatch every message of the batch; the ids of those that failed (retried)."""
    failed: set[str] = set()
    fresh = [a for a in arrivals if not a.suspect]
    failed |= _settle_suspects(ports, [a for a in arrivals if a.suspect])
    routed: list[tuple[Arrival, Route]] = []
    for arrival in fresh:
        try:
            routed.append((arrival, route_of(ports, arrival.message)))
        except InvalidRequest:  # its type left the policy: dispatch fails the job with the reason
            failed |= _single(ports, [arrival])
    # The children share the parent's parameters and each line names its own values, so one array
    # holds jobs that name the same parameters: a job leaving out an optional one keeps its default.
    by_route = grouped(
        routed,
        lambda pair: (
            pair[0].message.tenant,
            pair[0].message.job_type,
            pair[1],
            frozenset(pair[0].message.parameters),
        ),
    )
    for (_, _, target, _), group in by_route.items():
        failed |= _group(ports, [arrival for arrival, _ in group], target)
    return failed


def _ids(arrivals: Sequence[Arrival]) -> set[str]:
    return {a.message_id for a in arrivals}


def _single(ports: Ports, arrivals: Sequence[Arrival]) -> set[str]:
    failed: set[str] = set()
    for arrival in arrivals:
        try:
            dispatch(ports, arrival.message, receive_count=arrival.receive_count)
        except Exception:
            logger.exception("single dispatch failed", extra={"job_id": arrival.message.job_id})
            failed.add(arrival.message_id)
    return failed


def _settle_suspects(ports: Ports, arrivals: Sequence[Arrival]) -> set[str]:
    """A message seen before: its job's array resumed when one claimed it, else the single-job way."""
    failed: set[str] = set()
    arrays: dict[str, list[Arrival]] = {}
    single: list[Arrival] = []
    for arrival in arrivals:
        try:
            job = ports.store.get(arrival.message.job_id)
        except Exception:  # this message is retried, not the whole batch
            logger.exception("job not read", extra={"job_id": arrival.message.job_id})
            failed.add(arrival.message_id)
            continue
        attempt = job.attempt(arrival.message.attempt) if job else None
        if attempt is not None and attempt.array_name:
            arrays.setdefault(attempt.array_name, []).append(arrival)
        elif job is not None and attempt is None and job.status in DISPATCHABLE_STATUSES:
            single.append(arrival)  # still waits for this attempt; dispatch looks for it in Batch first
    taken: set[str] = set()
    doubtful: set[str] = set()
    for name, waiting in arrays.items():
        try:
            taken |= resume(ports, name)
        except Exception:
            logger.exception("array not resumed", extra={"array": name})
            failed |= _ids(waiting)
            # It may have claimed some of its jobs midway without saying so: those are read again at
            # their redelivery rather than sent alone (and terminated at their record).
            doubtful |= _member_jobs(ports, name, fallback={a.message.job_id for a in single})
    # A job a resumed array has just claimed (its claim was not made before the crash) is the array's.
    single = [a for a in single if a.message.job_id not in taken]
    failed |= _ids([a for a in single if a.message.job_id in doubtful])
    return failed | _single(ports, [a for a in single if a.message.job_id not in doubtful])


def _member_jobs(ports: Ports, name: str, *, fallback: set[str]) -> set[str]:
    """The ids of the array's members; `fallback` when they cannot be read."""
    try:
        meta = ports.arrays.meta(name)
        return {m.job_id for m in ports.arrays.members(name, meta.size)} if meta else set()
    except Exception:
        logger.exception("array members not read", extra={"array": name})
        return fallback


def _group(ports: Ports, arrivals: Sequence[Arrival], target: Route) -> set[str]:
    """One tenant's messages of one route: arrays of up to max_size, the short rest deferred."""
    kind = ports.policy.job_types.get(arrivals[0].message.job_type)
    if kind is None or kind.array is None:  # the section left the policy: one job at a time
        return _single(ports, arrivals)
    ordered = [m.message for m in members_of(a.message for a in arrivals)]  # one a job, by job id
    by_job = {a.message.job_id: a for a in arrivals}
    failed: set[str] = set()
    now = ports.clock().timestamp()
    for run in chunks(ordered, kind.array.max_size):
        chunk = members_of(run)  # each array's own indexes, 0..len-1: its children's
        took = [by_job[m.message.job_id] for m in chunk]
        oldest = min(m.message.coalesce_since or now for m in chunk)
        wait = remaining_wait(oldest, now, kind.array.max_wait_seconds)
        try:
            if len(chunk) < kind.array.max_size and wait > 0:
                _defer(ports, chunk, wait)
            elif len(chunk) == 1:
                failed |= _single(ports, took)
            else:
                _submit_array(ports, chunk, target)
        except Exception:
            logger.exception("array not submitted", extra={"jobs": len(chunk)})
            failed |= {a.message_id for a in took}
    return failed


def _defer(ports: Ports, chunk: Sequence[Member], wait: int) -> None:
    """Back to the array queue for the rest of the wait; the originals are then deleted (a success)."""
    ports.dispatch.send_all([member.message for member in chunk], delay_seconds=wait)
    metric("CoalesceDeferred", len(chunk))
    logger.debug("jobs wait for others to join their array", extra={"jobs": len(chunk), "wait": wait})


def _submit_array(ports: Ports, chunk: Sequence[Member], target: Route) -> None:
    now = ports.clock()
    first = chunk[0].message
    members = [m.message for m in chunk]
    name = array_name(f"{m.job_id}#{m.attempt}" for m in members)
    text = manifest_text(
        manifest_line(m.index, m.message, attempt_output_prefix(m.message.output_prefix, m.message.attempt))
        for m in chunk
    )
    meta = ArrayMeta(
        name=name,
        tenant=first.tenant,
        job_type=first.job_type,
        queue=target.queue,
        job_definition=target.job_definition,
        capacity=target.capacity.value,
        vcpus=target.vcpus,
        memory_mib=target.memory_mib,
        size=len(chunk),
        manifest_uri=ports.manifests.write(name, text),
        created_at=now,
        share=target.share,
        priority=target.priority,
        parameters=first.parameters,
    )
    ports.arrays.write(meta, [f"{m.job_id}#{m.attempt}" for m in members])
    _complete(ports, meta, [ArrayMember(name, m.index, m.message.job_id, m.message.attempt) for m in chunk])


def resume(ports: Ports, name: str, *, nested: bool = False) -> set[str]:
    """Carry an array an earlier delivery began (its meta and parts written) to Batch and its record;
    the ids of the jobs it holds. `nested`: resumed by another array's completion (_resume_stale)."""
    meta = ports.arrays.meta(name)
    if meta is None or meta.parent_job_id is not None:
        return set()  # never written past its parts (its members were not claimed), or done
    members = ports.arrays.members(name, meta.size)
    if meta.refused is not None:  # a crash may have cut the failing of its jobs short: finished here
        _refused(ports, meta, members, meta.refused)
        return set()
    return _complete(ports, meta, members, look_first=True, nested=nested)


def _complete(
    ports: Ports,
    meta: ArrayMeta,
    members: list[ArrayMember],
    *,
    look_first: bool = False,
    nested: bool = False,
) -> set[str]:
    """Claims, then SubmitJob (or adoption of what Batch has under the name), then the parent's id,
    then the children at its holes terminated; the ids of the jobs it, and any array it resumed,
    hold."""
    now = ports.clock()
    held: set[str] = set()
    ours: set[int] = set()
    others: set[str] = set()
    for member, claim in zip(members, _claim_all(ports, meta, members, now), strict=True):
        if claim.ours:
            held.add(member.job_id)
            ours.add(member.index)
        look_first = look_first or claim.before
        if claim.other and claim.other != meta.name:
            others.add(claim.other)
    # One level only: two stalled arrays that each hold a job of the other would resume each other
    # without end; the nested one submits what it holds and leaves the rest as holes.
    elsewhere: set[str] = set()
    for other in sorted(others) if not nested else ():
        elsewhere |= _resume_stale(ports, other, now)
    if not held:
        logger.info("array has no member left to run; not submitted", extra={"array": meta.name})
    elif not ports.arrays.hold_submission(meta.name, now, now + SUBMISSION_HOLD):
        # Another invocation submits it (two resumes of one array: the sweeper's look-first messages
        # split across invocations), or has recorded its parent or Batch's refusal meanwhile.
        logger.info("array submitted, refused or held by another invocation", extra={"array": meta.name})
    else:
        _submit_held(ports, meta, members, ours, look_first=look_first)
    return held | elsewhere


def _submit_held(
    ports: Ports, meta: ArrayMeta, members: list[ArrayMember], ours: set[int], *, look_first: bool
) -> None:
    """With the array's submission held: adopt what Batch has under its name, or SubmitJob; record
    the parent; terminate the children at the indexes the array does not hold."""
    found = ports.batch.find_by_name(meta.queue, meta.name) if look_first else []
    if found:
        parent = found[0].job_id
        logger.info("adopting earlier array submission", extra={"array": meta.name, "parent": parent})
    else:
        try:
            parent = _submit(ports, meta)
        except BatchRefused as refused:
            _refused(ports, meta, members, str(refused))
            return
        metric("ArraysSubmitted")
        metric("ArrayChildren", meta.size)
    if not ports.arrays.record_parent(meta.name, parent):
        recorded = ports.arrays.parent_of(meta.name)
        if recorded is not None and recorded != parent:
            # A twin submitted the same array and its parent was recorded first (by its coalescer or a
            # child's event): the array's children are the recorded parent's; this one's would run the
            # same jobs again (state_change stops each as well: array_events.from_twin).
            logger.warning(
                "twin array submission; terminating it",
                extra={"array": meta.name, "parent": parent, "recorded": recorded},
            )
            ports.batch.terminate(parent, f"batchplane: array {meta.name} was submitted twice")
            parent = recorded
    _terminate_holes(ports, meta, parent, ours)
    logger.info(
        "array job submitted",
        extra={
            "array": meta.name,
            "parent": parent,
            "size": meta.size,
            "claimed": len(ours),
            "tenant": meta.tenant,
        },
    )


def _claim_all(ports: Ports, meta: ArrayMeta, members: list[ArrayMember], now: datetime) -> list[Claim]:
    """Each member's claim, a few at a time: they are conditional writes on distinct items, so their
    order does not matter, and one after another 1,000 of them wait ~5 s on DynamoDB's round trips.
    A failed claim raises once those under way are done, as a crash between claims would."""

    def claim(member: ArrayMember) -> Claim:
        attempt, entry = _child_attempt(meta, member, now), _joined(meta, member, now)
        return ports.arrays.claim(member.job_id, attempt, entry)

    if len(members) < 2:
        return [claim(member) for member in members]
    with ThreadPoolExecutor(max_workers=CLAIMS_AT_ONCE, thread_name_prefix="claim") as pool:
        return list(pool.map(claim, members))


def _terminate_holes(ports: Ports, meta: ArrayMeta, parent: str, ours: set[int]) -> None:
    """The children at indexes the array does not hold (their jobs moved on, or another array holds
    them) would run those jobs again: terminated now, while they are still PENDING, rather than at
    their first state event, which stays the fallback for any call that fails here. TerminateJob
    takes a child's own id, `<parent>:<index>`."""
    holes = [index for index in range(meta.size) if index not in ours]
    if not holes:
        return

    def terminate(index: int) -> bool:
        try:
            ports.batch.terminate(
                f"{parent}:{index}", f"batchplane: array {meta.name} does not hold the job at index {index}"
            )
        except Exception:
            logger.warning(
                "array hole not terminated; its first event will", extra={"array": meta.name, "index": index}
            )
            return False
        return True

    with ThreadPoolExecutor(max_workers=CLAIMS_AT_ONCE, thread_name_prefix="hole") as pool:
        done = sum(pool.map(terminate, holes))
    logger.info("array holes terminated", extra={"array": meta.name, "holes": len(holes), "done": done})


def _refused(ports: Ports, meta: ArrayMeta, members: list[ArrayMember], reason: str) -> None:
    """Batch refused the array itself (its queue, its definition): every job it holds fails for good,
    as a refused single submission does; trying again would be refused again. The array is closed
    first, so no redelivery or duplicate submits it again (a later fix of the definition included)."""
    if not ports.arrays.close(meta.name, reason) and ports.arrays.parent_of(meta.name) is not None:
        # A parent was recorded meanwhile (a child's event of an earlier submission ListJobs missed):
        # Batch runs the array, so its jobs are not failed.
        logger.warning("refused array has a parent; its jobs go on", extra={"array": meta.name})
        return
    now = ports.clock()
    for member in members:
        job = ports.store.get(member.job_id)
        if job is None:
            continue
        failed = transitions.array_refused(
            job, attempt=member.attempt, array_name=meta.name, reason=reason, now=now
        )
        if failed is not None:
            fail_for_good(ports, job, failed)
    logger.warning(
        "Batch refused the array job; its jobs failed", extra={"array": meta.name, "reason": reason}
    )


def _resume_stale(ports: Ports, name: str, now: datetime) -> set[str]:
    """Another array holds one of this array's jobs: resumed here when its own invocation is surely
    over (made longer than stale_after ago), else left to it, its redelivery or the sweeper; the ids
    of the jobs it holds."""
    meta = ports.arrays.meta(name)
    if meta is not None and meta.parent_job_id is None and now - meta.created_at >= ports.stale_after:
        return resume(ports, name, nested=True)
    return set()


def _submit(ports: Ports, meta: ArrayMeta) -> str:
    try:
        kind = job_type_of(ports.policy, meta.job_type)
    except InvalidRequest as gone:  # its type left the policy: as refused, not retried without end
        raise BatchRefused(f"job type {meta.job_type} is no longer in the policy") from gone
    target = Route(
        queue=meta.queue,
        job_definition=meta.job_definition,
        capacity=Capacity(meta.capacity),
        vcpus=meta.vcpus,
        memory_mib=meta.memory_mib,
        timeout_seconds=kind.timeout_seconds,
        share=meta.share,
        priority=meta.priority,
    )
    return ports.batch.submit(
        name=meta.name,
        route=target,
        parameters=meta.parameters,
        environment={MANIFEST_VARIABLE: meta.manifest_uri, ARRAY_VARIABLE: meta.name},
        tags={"bp:array": meta.name, "bp:tenant": meta.tenant, "bp:job_type": meta.job_type},
        array_size=meta.size,
    )


def _child_attempt(meta: ArrayMeta, member: ArrayMember, now: datetime) -> Attempt:
    return Attempt(
        number=member.attempt,
        job_name=meta.name,
        queue=meta.queue,
        job_definition=meta.job_definition,
        capacity=Capacity(meta.capacity),
        vcpus=meta.vcpus,
        memory_mib=meta.memory_mib,
        submitted_at=now,
        array_name=meta.name,
        array_index=member.index,
    )


def _joined(meta: ArrayMeta, member: ArrayMember, now: datetime) -> HistoryEntry:
    return HistoryEntry(
        at=now,
        event="submitted",
        reason=(
            f"attempt {member.attempt} joined array job {meta.name} at index {member.index} of {meta.size} "
            f"on {queue_name(meta.queue)} ({meta.capacity}, {meta.vcpus} vCPU, {meta.memory_mib} MiB)"
        ),
    )
