"""Following an attempt through Batch's state events, and deciding when it ends.

Events arrive at least once and in any order. A non-terminal event is one conditional write that
only moves its attempt forward. A terminal event reads the job, decides, and writes the decision
with a version guard, so two copies handled at once make exactly one decision. The alert and the job
event a decision owes are written with it (its outbox) and published from the table's stream
(service/outbox.py), never here: a publish that fails, or a function that dies after the write,
cannot lose them.

An array job's child (service/array_events.py) is the attempt its index names, and its events are
handled exactly as that attempt's would be; its parent's events change no job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from batchplane.lifecycle.array_children import is_its_batch_job
from batchplane.lifecycle.attempts import (
    Verdict,
    apply_decision,
    attempt_status,
    end_attempt,
    progress_of,
    succeed,
    verdict,
)
from batchplane.lifecycle.classify import classify
from batchplane.lifecycle.outbox import owing
from batchplane.lifecycle.waiting import EndWait, end_of_wait, is_misconfiguration
from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import DISPATCHABLE_STATUSES, AttemptStatus, Capacity, FailureClass, Job
from batchplane.models.outbox import JobEventType
from batchplane.models.policy import JobType
from batchplane.observability import MetricUnit, logger, metric
from batchplane.policy.retry import GiveUp, Retry, decide
from batchplane.policy.routing import parse_array_name, parse_job_name
from batchplane.service import array_events, costs
from batchplane.service.conflicts import retry_on_conflict
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS, Ports

# A wait whose start Batch did not say: long enough to ask the books.
_UNKNOWN = 2**31


class Outcome(StrEnum):
    PROGRESSED = "progressed"
    STALE = "stale"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    RECORDED = "recorded"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"
    UNWANTED = "unwanted"  # an array child no job wants: terminated


class AttemptNotRecordedYet(Exception):
    """The attempt's end arrived before the dispatcher recorded it; handling it again later works."""


@dataclass(frozen=True)
class Handled:
    outcome: Outcome
    job: Job | None = None


def handle_state_change(ports: Ports, detail: BatchJobDetail) -> Handled:
    status = attempt_status(detail.status)
    array_name = parse_array_name(detail.job_name)
    if array_name is not None and status is not None and not array_events.is_child(detail):
        if detail.array_size is not None and ":" not in detail.job_id:
            array_events.parent_event(ports, array_name, detail)
        return Handled(Outcome.IGNORED)
    if array_name is not None and status is not None and array_events.from_twin(ports, array_name, detail):
        # A twin's child is no attempt's Batch job: stopped, and its end decides nothing.
        if status.is_terminal:
            logger.info("end of a twin array's child; ignored", extra={"batch_job_id": detail.job_id})
            return Handled(Outcome.IGNORED)
        array_events.terminate(ports, detail, f"{detail.job_id} is a child of a twin of array {array_name}")
        return Handled(Outcome.UNWANTED)
    parsed = _attempt_of(ports, detail)
    if parsed is None or status is None:
        if array_name is not None and status is not None and not status.is_terminal:
            array_events.terminate(ports, detail, f"index {detail.array_index} of {array_name} is no job's")
            return Handled(Outcome.UNWANTED)
        logger.info(
            "not a batchplane attempt; ignored", extra={"batch_job": detail.job_name, "status": detail.status}
        )
        return Handled(Outcome.IGNORED)
    job_id, number = parsed
    if status.is_terminal:
        return _finish(ports, job_id, number, detail)
    return _progress(ports, job_id, number, status, detail)


def _attempt_of(ports: Ports, detail: BatchJobDetail) -> tuple[str, int] | None:
    """(job_id, attempt) of the Batch job: from its name, or an array child's from its index's member."""
    array_name = parse_array_name(detail.job_name)
    if array_name is None:
        return parse_job_name(detail.job_name)
    if detail.array_index is None:
        return None
    member = ports.arrays.member(array_name, detail.array_index)
    return (member.job_id, member.attempt) if member is not None else None


def _progress(
    ports: Ports, job_id: str, number: int, status: AttemptStatus, detail: BatchJobDetail
) -> Handled:
    progress = progress_of(detail, number, status, ports.clock())
    tenant = detail.tags.get("bp:tenant")
    if tenant is None:  # tags are always set at submit; without them the tenant must be read
        job = ports.store.get(job_id)
        if job is None:
            if progress.array_name is not None:  # a child whose member's job is gone
                array_events.terminate(ports, detail, f"attempt {number} of {job_id} is not wanted")
                return Handled(Outcome.UNWANTED)
            logger.info("event for an unknown job; ignored", extra={"job_id": job_id})
            return Handled(Outcome.IGNORED)
        tenant = job.tenant
    recorded = ports.store.record_progress(job_id, tenant, progress)
    if (
        not recorded
        and progress.array_name is not None
        and array_events.stop_unwanted(ports, job_id, number, detail)
    ):
        return Handled(Outcome.UNWANTED)
    if status is AttemptStatus.RUNNABLE and (recorded or is_misconfiguration(detail.status_reason)):
        # News is looked at, and a misconfiguration always (its copy may be the redelivery of one
        # whose handler died before it ended the wait); any other copy changes and reads nothing.
        ended = end_wait(ports, detail, ports.policy.job_types.get(detail.tags.get("bp:job_type", "")))
        if ended is not None:
            return ended
    if not recorded:
        logger.info(
            "stale or duplicate event; nothing changed",
            extra={
                "job_id": job_id,
                "attempt": number,
                "status": status.value,
                "batch_job_id": detail.job_id,
            },
        )
        return Handled(Outcome.STALE)
    if status is AttemptStatus.RUNNING and detail.started_at and detail.created_at:
        wait = max(0.0, (detail.started_at - detail.created_at) / 1000)
        metric("QueueWait", wait, MetricUnit.Seconds, job_type=detail.tags.get("bp:job_type", "unknown"))
    return Handled(Outcome.PROGRESSED)


def end_wait(ports: Ports, detail: BatchJobDetail, job_type: JobType | None) -> Handled | None:
    """End an attempt that waits in RUNNABLE in vain (lifecycle/waiting.py): TerminateJob, then the
    decision its FAILED event would bring, made now. None when it goes on waiting.

    Exactly once under duplicates and a concurrent sweep: the decision is saved under the version
    guard (the loser finds the attempt ended: a duplicate), TerminateJob of an ended job changes
    nothing, and a retry's attempt has its deterministic name. Batch's own FAILED event for the
    terminated job comes later and is a duplicate."""
    parsed = _attempt_of(ports, detail)
    if parsed is None or detail.status != AttemptStatus.RUNNABLE.value:
        return None
    job_id, number = parsed
    now = ports.clock()
    capacity = Capacity.SPOT if detail.job_queue == ports.queues.spot else Capacity.ON_DEMAND

    def end_after(waited: int) -> EndWait | None:
        return end_of_wait(
            status_reason=detail.status_reason, capacity=capacity, waited_seconds=waited, job_type=job_type
        )

    # Batch's createdAt spares the read of every job that has not waited long (without it, the books
    # decide); the wait is then measured from the attempt's submission as the books record it.
    if end_after(int(now.timestamp() - detail.created_at / 1000) if detail.created_at else _UNKNOWN) is None:
        return None
    job = ports.store.get(job_id)
    attempt = job.attempt(number) if job is not None else None
    if (
        attempt is None
        or not is_its_batch_job(attempt, detail)
        or attempt.status.rank > AttemptStatus.RUNNABLE.rank
    ):
        return None  # by the books it is not waiting (started, ended, or a twin): nothing to end
    end = end_after(int((now - attempt.submitted_at).total_seconds()))
    if end is None:
        return None
    ports.batch.terminate(detail.job_id, end.reason)
    logger.info(
        "ending an attempt that waits in vain",
        extra={"job_id": job_id, "attempt": number, "batch_job_id": detail.job_id, "reason": end.reason},
    )
    failed = detail.model_copy(update={"status": "FAILED", "status_reason": end.reason})
    return _finish(ports, job_id, number, failed)


def _finish(ports: Ports, job_id: str, number: int, detail: BatchJobDetail) -> Handled:
    def once() -> Handled:
        # After a conflict this reads again: if the other writer made this decision, it is a duplicate.
        job = ports.store.get(job_id)
        if job is None:
            logger.info("terminal event for an unknown job; ignored", extra={"job_id": job_id})
            return Handled(Outcome.IGNORED)
        return _finish_once(ports, job, number, detail)

    return retry_on_conflict(once)


def _finish_once(ports: Ports, job: Job, number: int, detail: BatchJobDetail) -> Handled:
    now = ports.clock()
    seen = verdict(job, number, detail.job_id)
    log = {"job_id": job.job_id, "attempt": number, "batch_job_id": detail.job_id, "verdict": seen.value}
    attempt = job.attempt(number)
    if detail.array_index is not None and (attempt is None or not is_its_batch_job(attempt, detail)):
        # Never claimed at this place (claims precede SubmitJob, so it never will be): not its end.
        logger.info("end of an array child that is not the attempt's; ignored", extra=log)
        return Handled(Outcome.IGNORED, job)
    if seen is Verdict.NOT_RECORDED_YET:
        if job.status in DISPATCHABLE_STATUSES:
            raise AttemptNotRecordedYet(f"attempt {number} of {job.job_id} ended before it was recorded")
        logger.info("end of an attempt the job never recorded; ignored", extra=log)
        return Handled(Outcome.IGNORED, job)
    if seen in (Verdict.FOREIGN, Verdict.DUPLICATE):
        logger.info("terminal event changes nothing", extra=log)
        return Handled(Outcome.DUPLICATE if seen is Verdict.DUPLICATE else Outcome.IGNORED, job)
    failure_class = classify(detail)
    ended = end_attempt(job, number, detail, failure_class, now)
    if seen is Verdict.RECORD_ONLY:
        ports.store.save(owing(ended), previous=job)
        logger.info("attempt ended after the job moved on; recorded only", extra=log)
        return Handled(Outcome.RECORDED, ended)

    if failure_class is None:
        return _succeeded(ports, job, ended, now)
    return _failed(ports, job, ended, failure_class, log=log, now=now)


def _succeeded(ports: Ports, job: Job, ended: Job, now: datetime) -> Handled:
    succeeded = owing(succeed(ended, now), job_event=JobEventType.SUCCEEDED)
    saved = ports.store.save(succeeded, previous=job)
    _ran(saved)
    costs.record_cost(ports, saved)
    metric("JobsSucceeded", job_type=job.job_type)
    return Handled(Outcome.SUCCEEDED, saved)


def _failed(
    ports: Ports, job: Job, ended: Job, failure_class: FailureClass, *, log: dict[str, object], now: datetime
) -> Handled:
    """Decide by the job type's retry policy: retry (perhaps on-demand, with more memory) or give up."""
    job_type = ports.policy.job_types.get(job.job_type)
    decision = (
        decide(job_type, ended, ports.rng)
        if job_type is not None
        else GiveUp(f"job type {job.job_type} is no longer in the policy; giving up")
    )
    decided = apply_decision(ended, decision, now)
    if isinstance(decision, Retry):
        decided = owing(decided, job_event=JobEventType.RETRYING)
    else:
        reason = decided.history[-1].reason
        decided = owing(decided, alert=f"job {job.job_id} failed: {reason}", job_event=JobEventType.FAILED)
    saved = ports.store.save(decided, previous=job)
    _ran(saved)
    logger.info(
        "attempt ended",
        extra={**log, "failure_class": failure_class.value, "decision": saved.history[-1].reason},
    )
    if isinstance(decision, Retry):
        if decision.delay_seconds <= MAX_DISPATCH_DELAY_SECONDS:
            ports.dispatch.send(DispatchMessage.next_attempt_of(saved), decision.delay_seconds)
        # (a longer wait is kept by the sweeper, which dispatches the job when next_dispatch_at is due)
        metric("Retries", failure_class=failure_class.value, job_type=job.job_type)
        if decision.fell_back:
            metric("SpotFallbacks", job_type=job.job_type)
        return Handled(Outcome.RETRYING, saved)
    metric("GiveUps", failure_class=failure_class.value, job_type=job.job_type)
    metric("JobsFailed", job_type=job.job_type)
    costs.record_cost(ports, saved)
    return Handled(Outcome.FAILED, saved)


def _ran(job: Job) -> None:
    attempt = job.current_attempt
    if attempt and attempt.started_at and attempt.stopped_at:
        seconds = max(0.0, (attempt.stopped_at - attempt.started_at).total_seconds())
        metric("RunTime", seconds, MetricUnit.Seconds, job_type=job.job_type)
