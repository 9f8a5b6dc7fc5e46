"""How Batch's word about an attempt moves the attempt and its job. Pure.

An event only moves its attempt forward (SUBMITTED < PENDING < RUNNABLE < STARTING < RUNNING <
terminal); the terminal event of the job's current attempt leads to exactly one decision.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.job import (
    IN_BATCH_STATUSES,
    Attempt,
    AttemptStatus,
    FailureClass,
    HistoryEntry,
    Job,
    JobStatus,
)
from batchplane.models.progress import Progress
from batchplane.policy.retry import GiveUp, Retry


def attempt_status(batch_status: str) -> AttemptStatus | None:
    """Batch's job status as an attempt status; None for a status batchplane does not know."""
    try:
        return AttemptStatus(batch_status)
    except ValueError:
        return None


def progress_of(detail: BatchJobDetail, number: int, status: AttemptStatus, now: datetime) -> Progress:
    return Progress(
        number=number,
        batch_job_id=detail.job_id,
        status=status,
        at=now,
        started_at=detail.time(detail.started_at) if status is AttemptStatus.RUNNING else None,
        log_stream=detail.log_stream,
        # Only a wait has a reason worth keeping before the end (Batch's MISCONFIGURATION:*, CAPACITY:*).
        status_reason=detail.status_reason if status is AttemptStatus.RUNNABLE else None,
        array_name=detail.job_name if detail.array_index is not None else None,
        array_index=detail.array_index,
    )


class Verdict(StrEnum):
    """What a terminal event means for a job, before any decision."""

    DECIDE = "decide"  # the current attempt of an active job ended: decide (succeed, retry, give up)
    RECORD_ONLY = "record_only"  # an attempt ended that no longer drives the job (older, or job cancelled)
    DUPLICATE = "duplicate"  # this attempt's end is already recorded
    FOREIGN = "foreign"  # a Batch job the attempt does not know (a twin submission, terminated)
    NOT_RECORDED_YET = "not_recorded_yet"  # the dispatcher has not recorded the attempt yet


def verdict(job: Job, number: int, batch_job_id: str) -> Verdict:
    attempt = job.attempt(number)
    if attempt is None:
        return Verdict.NOT_RECORDED_YET if number == len(job.attempts) + 1 else Verdict.FOREIGN
    if attempt.batch_job_id is not None and attempt.batch_job_id != batch_job_id:
        return Verdict.FOREIGN
    if attempt.status.is_terminal:
        return Verdict.DUPLICATE
    if number != len(job.attempts) or job.status not in IN_BATCH_STATUSES:
        return Verdict.RECORD_ONLY
    return Verdict.DECIDE


def end_attempt(
    job: Job, number: int, detail: BatchJobDetail, failure_class: FailureClass | None, now: datetime
) -> Job:
    """The job with attempt `number` ended as Batch says; the job's own status is left alone."""
    status = AttemptStatus.SUCCEEDED if detail.status == "SUCCEEDED" else AttemptStatus.FAILED
    last = detail.last_attempt

    def finished(attempt: Attempt) -> Attempt:
        return attempt.model_copy(
            update={
                "batch_job_id": detail.job_id,
                "status": status,
                "status_reason": _status_reason(detail),
                "exit_code": detail.exit_code,
                "failure_class": failure_class,
                "log_stream": detail.log_stream or attempt.log_stream,
                "started_at": attempt.started_at
                or detail.time(last.started_at if last else detail.started_at),
                "stopped_at": detail.time(last.stopped_at if last else detail.stopped_at) or now,
            }
        )

    ended = [finished(a) if a.number == number else a for a in job.attempts]
    return job.model_copy(update={"attempts": ended, "updated_at": now})


def _status_reason(detail: BatchJobDetail) -> str | None:
    """The most telling reason: a container reason beats "Essential container in task exited"."""
    reasons = detail.reasons()
    for reason in reasons:
        if not reason.lower().startswith("essential container in task exited"):
            return reason
    return reasons[0] if reasons else None


def _entry(now: datetime, event: str, reason: str) -> HistoryEntry:
    return HistoryEntry(at=now, event=event, reason=reason)


def succeed(job: Job, now: datetime) -> Job:
    """The job succeeded with its last attempt; that attempt's outputs are recorded as S3 reports
    them written (service/artifacts.py), not here."""
    attempt = job.attempts[-1]
    prefix = f"{job.output_prefix}attempt-{attempt.number}/"
    return job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "updated_at": now,
            "next_dispatch_at": None,
            "history": [
                *job.history,
                _entry(
                    now,
                    "succeeded",
                    f"attempt {attempt.number} succeeded on {attempt.capacity.value}; outputs under {prefix}",
                ),
            ],
        }
    )


def apply_decision(job: Job, decision: Retry | GiveUp, now: datetime) -> Job:
    if isinstance(decision, GiveUp):
        return job.model_copy(
            update={
                "status": JobStatus.FAILED,
                "updated_at": now,
                "next_dispatch_at": None,
                "history": [*job.history, _entry(now, "gave_up", decision.reason)],
            }
        )
    entries = [_entry(now, "retried", decision.reason)]
    if decision.fell_back:
        entries.insert(
            0, _entry(now, "fell_back", f"moving from {job.capacity.value} to {decision.capacity.value}")
        )
    return job.model_copy(
        update={
            "status": JobStatus.RETRY_WAIT,
            "updated_at": now,
            "capacity": decision.capacity,
            "memory_mib": decision.memory_mib,
            "next_dispatch_at": now + timedelta(seconds=decision.delay_seconds),
            "history": [*job.history, *entries],
        }
    )


def note_stuck_runnable(job: Job, waited_seconds: int, now: datetime) -> Job | None:
    """Mark the current attempt as stuck in RUNNABLE, once; None when it was marked already."""
    return _note_stuck(job, AttemptStatus.RUNNABLE, waited_seconds, now)


def note_stuck_starting(job: Job, waited_seconds: int, now: datetime) -> Job | None:
    """Mark the current attempt as stuck in STARTING (placed, its container not running), once."""
    return _note_stuck(job, AttemptStatus.STARTING, waited_seconds, now)


def _note_stuck(job: Job, status: AttemptStatus, waited_seconds: int, now: datetime) -> Job | None:
    attempt = job.current_attempt
    if attempt is None or attempt.status is not status:
        return None
    event = f"stuck_{status.value.lower()}"
    marker = f"attempt {attempt.number} "
    if any(h.event == event and h.reason.startswith(marker) for h in job.history):
        return None
    reason = (
        f"attempt {attempt.number} has waited {waited_seconds} s in {status.value} "
        f"on {attempt.queue.rsplit('/', 1)[-1]} "
        f"({attempt.capacity.value}, {attempt.vcpus} vCPU, {attempt.memory_mib} MiB)"
    )
    if attempt.status_reason and status is AttemptStatus.RUNNABLE:
        reason += f"; Batch says: {attempt.status_reason}"
    return job.model_copy(update={"history": [*job.history, _entry(now, event, reason)]})
