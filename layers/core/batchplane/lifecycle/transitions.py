"""Operator-driven transitions of a job: cancel, manual retry, a dispatch that Batch refused; and a
new job held over its tenant's in-flight limit, and released when a slot frees.

Each takes a Job and returns the next Job (a new value); the store writes it with a version guard.
"""

from __future__ import annotations

from datetime import datetime

from batchplane.errors import ErrorDetail, InvalidTransition
from batchplane.models.job import (
    DISPATCHABLE_STATUSES,
    AttemptStatus,
    HistoryEntry,
    Job,
    JobStatus,
)

RETRYABLE_BY_HAND = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})


def _with(job: Job, now: datetime, status: JobStatus, event: str, reason: str) -> Job:
    return job.model_copy(
        update={
            "status": status,
            "updated_at": now,
            "history": [*job.history, HistoryEntry(at=now, event=event, reason=reason)],
        }
    )


def hold(job: Job, *, reason: str) -> Job:
    """A new job over its tenant's in-flight limit waits HELD, outside the count, for a slot."""
    if job.status is not JobStatus.QUEUED or job.attempts:
        raise InvalidTransition(
            f"job {job.job_id} is {job.status.value}; only a new job can be held",
            [ErrorDetail("status", f"{job.status.value} is not a new QUEUED job")],
        )
    held = _with(job, job.created_at, JobStatus.HELD, "held", reason)
    return held.model_copy(update={"held_reason": reason})


def release(job: Job, *, now: datetime, reason: str) -> Job:
    """A HELD job takes a freed slot: QUEUED, its first attempt goes to dispatch."""
    if job.status is not JobStatus.HELD:
        raise InvalidTransition(
            f"job {job.job_id} is {job.status.value}; only a HELD job can be released",
            [ErrorDetail("status", f"{job.status.value} is not HELD")],
        )
    waited = int((now - job.created_at).total_seconds())
    released = _with(job, now, JobStatus.QUEUED, "released", f"{reason}; held {waited} s")
    return released.model_copy(update={"held_reason": None})


def cancel(job: Job, *, now: datetime, requested_by: str) -> Job:
    if job.status.is_terminal:
        raise InvalidTransition(
            f"job {job.job_id} is {job.status.value} and cannot be cancelled",
            [ErrorDetail("status", f"{job.status.value} is terminal")],
        )
    attempt = job.current_attempt
    where = f" (attempt {attempt.number} on {attempt.capacity.value})" if attempt else ""
    return _with(job, now, JobStatus.CANCELLED, "cancelled", f"cancelled by {requested_by}{where}")


def manual_retry(job: Job, *, now: datetime, requested_by: str) -> Job:
    """An explicit retry is the only way out of FAILED or CANCELLED: it queues a new attempt."""
    if job.status not in RETRYABLE_BY_HAND:
        raise InvalidTransition(
            f"job {job.job_id} is {job.status.value}; only FAILED or CANCELLED jobs can be retried",
            [ErrorDetail("status", f"{job.status.value} is not FAILED or CANCELLED")],
        )
    return _with(
        job,
        now,
        JobStatus.QUEUED,
        "retried",
        f"manual retry by {requested_by}; attempt {len(job.attempts) + 1} queued",
    )


def dispatch_refused(job: Job, *, attempt: int, reason: str, now: datetime) -> Job | None:
    """Batch refused SubmitJob for a reason retrying cannot fix; the job fails once, with that reason.

    None when the job has moved on (a duplicate message, a cancel): nothing to change.
    """
    if job.status not in DISPATCHABLE_STATUSES or len(job.attempts) != attempt - 1:
        return None
    return _with(job, now, JobStatus.FAILED, "gave_up", f"Batch refused attempt {attempt}: {reason}")


def array_refused(job: Job, *, attempt: int, array_name: str, reason: str, now: datetime) -> Job | None:
    """Batch refused the array job the attempt was claimed for (its queue or definition): the job fails
    once, as a refused single submission does. None when the attempt is not that array's claim still
    waiting for Batch (a duplicate, a cancel, a child Batch already holds)."""
    current = job.current_attempt
    if (
        job.status is not JobStatus.SUBMITTED
        or current is None
        or current.number != attempt
        or current.array_name != array_name
        or current.batch_job_id is not None
    ):
        return None
    said = f"Batch refused array job {array_name} holding attempt {attempt}: {reason}"
    failed = _with(job, now, JobStatus.FAILED, "gave_up", said)
    ended = current.model_copy(
        update={"status": AttemptStatus.FAILED, "status_reason": reason, "stopped_at": now}
    )
    return failed.model_copy(update={"attempts": [*job.attempts[:-1], ended]})
