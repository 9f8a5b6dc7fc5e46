"""An array job's child and the attempt it runs: whether the books want it. Pure.

A child's attempt is claimed (service/coalesce.py) before its array is submitted, so until an event
names the child its attempt records the array's name and index and no Batch job id. A child is the
attempt's own Batch job when the attempt records its id, or records no id and this very place.
"""

from __future__ import annotations

from enum import StrEnum

from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.job import IN_BATCH_STATUSES, Attempt, Job


class Standing(StrEnum):
    """What an array child is to the job its index names."""

    WANTED = "wanted"  # the job's current attempt, in Batch's hands, and this child is its Batch job
    ENDED = "ended"  # its attempt's end is recorded already: nothing left to stop
    UNWANTED = "unwanted"  # a hole, another array's or a twin's place, or a job that moved on: stop it


def is_its_batch_job(attempt: Attempt, detail: BatchJobDetail) -> bool:
    """Whether the Batch job `detail` speaks of is the one this attempt runs as."""
    if attempt.batch_job_id is not None:
        return attempt.batch_job_id == detail.job_id
    return (
        detail.array_index is not None
        and attempt.array_name == detail.job_name
        and attempt.array_index == detail.array_index
    )


def standing(job: Job | None, number: int, detail: BatchJobDetail) -> Standing:
    """Whether the job still wants the child `detail` speaks of as its attempt `number`."""
    attempt = job.attempt(number) if job is not None else None
    if job is None or attempt is None or not is_its_batch_job(attempt, detail):
        return Standing.UNWANTED
    if attempt.status.is_terminal:
        return Standing.ENDED
    if job.status not in IN_BATCH_STATUSES or number != job.attempts[-1].number:
        return Standing.UNWANTED  # cancelled, or another attempt is (or will be) the job's current one
    return Standing.WANTED
