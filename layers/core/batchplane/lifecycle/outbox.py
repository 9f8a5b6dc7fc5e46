"""The side effects a write owes, put in the job it writes, and the job they speak of. Pure.

Every write that saves a whole job says what it owes with `owing`: a decision owes its alert and its
job event, anything else owes nothing. The write replaces the outbox, so the item holds only what its
latest write owes; nothing is lost by that, since each write's own stream record carries what that
write owed (models/outbox.py).
"""

from __future__ import annotations

from batchplane.models.job import Job
from batchplane.models.outbox import JobEventType, OwedEvent, OwedKind, event_id


def owing(job: Job, *, alert: str | None = None, job_event: JobEventType | None = None) -> Job:
    """`job` as its write stores it, owing exactly these: an alert with this subject, and this job event.

    `job.version` is the version the change was made on (the one the write is conditioned on), which
    makes the events' ids unique and stable.
    """
    owed: list[OwedEvent] = []
    if alert is not None:
        owed.append(_owed(job, OwedKind.ALERT, alert))
    if job_event is not None:
        owed.append(_owed(job, OwedKind.JOB_EVENT, job_event.value))
    return job.model_copy(update={"outbox": owed})


def _owed(job: Job, kind: OwedKind, subject: str) -> OwedEvent:
    return OwedEvent(event_id=event_id(job.job_id, job.version, kind), kind=kind, subject=subject)


def lacks_earlier_attempts(image: Job) -> bool:
    """A job item may hold only its latest attempts (the store keeps the others beside it)."""
    return bool(image.attempts) and image.attempts[0].number > 1


def with_earlier_attempts(image: Job, stored: Job | None) -> Job:
    """The job as a write left it (`image`), with the attempts before its first one taken from the job
    as stored now: an attempt that is no longer current never changes, so those are as they were."""
    if not lacks_earlier_attempts(image) or stored is None:
        return image
    first = image.attempts[0].number
    earlier = [attempt for attempt in stored.attempts if attempt.number < first]
    return image.model_copy(update={"attempts": [*earlier, *image.attempts]})
