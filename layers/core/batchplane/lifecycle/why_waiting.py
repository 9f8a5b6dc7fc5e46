"""Why a job waits: its attempt's state in Batch, Batch's reason, and its place in the queue."""

from __future__ import annotations

from batchplane.models.job import AttemptStatus, Job, JobStatus
from batchplane.models.waiting import FRONT_OF_QUEUE, QueueFront, Waiting

# The states in which an attempt waits in Batch for capacity or a start (RUNNING is no longer waiting).
WAITING_STATUSES = frozenset({JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE, JobStatus.STARTING})


def waits_in_queue(job: Job) -> str | None:
    """The job queue whose snapshot can place the job: a RUNNABLE attempt's queue, else None."""
    attempt = job.current_attempt
    if job.status is not JobStatus.RUNNABLE or attempt is None or attempt.batch_job_id is None:
        return None
    return attempt.queue


def waiting_of(job: Job, front: QueueFront | None) -> Waiting | None:
    """The job's wait, or None when it does not wait in Batch. `front` is the snapshot of its queue
    (waits_in_queue), when one was taken."""
    attempt = job.current_attempt
    if job.status not in WAITING_STATUSES or attempt is None:
        return None
    status = AttemptStatus(job.status.value)
    if status is AttemptStatus.RUNNABLE:
        since = attempt.runnable_at or job.updated_at
    elif status is AttemptStatus.SUBMITTED:
        since = attempt.submitted_at
    else:  # the event that moved the job to PENDING or STARTING is its last change
        since = job.updated_at
    waiting = Waiting(status=status, reason=attempt.status_reason, since=since, position_note="")
    if status is not AttemptStatus.RUNNABLE:
        waiting.position_note = "Batch places only RUNNABLE jobs in its queue order"
        return waiting
    if front is None or attempt.batch_job_id is None:
        waiting.position_note = "no snapshot of the job queue yet (the sweeper takes one each run)"
        return waiting
    waiting.position_as_of = front.as_of
    waiting.position = front.position_of(attempt.batch_job_id)
    if waiting.position is None and front.as_of < since:
        waiting.position_note = "the latest snapshot of the job queue is older than the wait"
        return waiting
    waiting.position_note = (
        f"not in the first {FRONT_OF_QUEUE} RUNNABLE jobs of its queue"
        if waiting.position is None
        else f"among the first {FRONT_OF_QUEUE} RUNNABLE jobs of its queue, in the order Batch starts them"
    )
    return waiting
