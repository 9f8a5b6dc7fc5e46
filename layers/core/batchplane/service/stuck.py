"""The sweeper's look at each attempt that waits in Batch: ended when its wait is in vain, else one
alert when it has been RUNNABLE or STARTING too long.

Called per job from `service/sweep.py::sweep`, after Batch's description of the job was applied (which
repairs a lost transition: a job Batch started shows RUNNING, not STARTING). Events end a wait as
soon as Batch gives its reason (`service/state_change.py::end_wait`); the sweeper is what ends a Spot
wait that no event reports (Batch gave no reason, or gave it before the limit passed).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from batchplane.errors import ConcurrentUpdate
from batchplane.lifecycle.attempts import note_stuck_runnable, note_stuck_starting
from batchplane.lifecycle.outbox import owing
from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.job import AttemptStatus, Job
from batchplane.observability import logger, metric
from batchplane.service.ports import Ports
from batchplane.service.state_change import end_wait


class Waiting(StrEnum):
    ENDED = "ended"  # the wait was in vain: the attempt was ended and decided
    STUCK = "stuck"  # waited past its alert threshold: alerted, once


_WAITS = (AttemptStatus.RUNNABLE, AttemptStatus.STARTING)


def check_waiting(ports: Ports, job: Job, detail: BatchJobDetail, now: datetime) -> Waiting | None:
    """What the sweeper did about the job's waiting attempt, if anything."""
    job_type = ports.policy.job_types.get(job.job_type)
    if detail.status == AttemptStatus.RUNNABLE.value and end_wait(ports, detail, job_type) is not None:
        return Waiting.ENDED
    for status in _WAITS:
        if detail.status == status.value and _alert_stuck(ports, job, status, now):
            return Waiting.STUCK
    return None


def _waited(job: Job, status: AttemptStatus, now: datetime) -> int:
    attempt = job.current_attempt
    assert attempt is not None
    since = attempt.runnable_at if status is AttemptStatus.RUNNABLE else attempt.starting_at
    return int((now - (since or attempt.submitted_at)).total_seconds())


def _alert_stuck(ports: Ports, job: Job, status: AttemptStatus, now: datetime) -> bool:
    """Mark the attempt stuck in `status` once its job type's threshold has passed; that write owes
    the alert (delivered by the outbox). Only then is the whole job read, for the version guard."""
    job_type = ports.policy.job_types.get(job.job_type)
    if job_type is None or job.current_attempt is None:
        return False
    limit = (
        job_type.runnable_alert_after_seconds
        if status is AttemptStatus.RUNNABLE
        else job_type.starting_alert_after_seconds
    )
    note = note_stuck_runnable if status is AttemptStatus.RUNNABLE else note_stuck_starting
    waited = _waited(job, status, now)
    # Decided on what the sweep read first: under its limit, or marked already (the item holds the
    # last decisions), a waiting job costs no further read.
    if waited < limit or note(job, waited, now) is None:
        return False
    current = ports.store.get(job.job_id)
    if current is None or current.current_attempt is None:
        return False
    # As stored now: a transition the sweeper just repaired has its own time.
    waited = _waited(current, status, now)
    if waited < limit:
        return False
    marked = note(current, waited, now)
    if marked is None:
        return False  # alerted once already
    try:
        ports.store.save(
            owing(marked, alert=f"job {job.job_id} stuck in {status.value} for {waited} s"), previous=current
        )
    except ConcurrentUpdate:
        logger.info(
            "job changed while marking it stuck; the next sweep looks again", extra={"job_id": job.job_id}
        )
        return False
    metric(f"Stuck{status.value.capitalize()}", job_type=job.job_type)
    return True
