"""The jobs table's stream as the outbox reads it: what one write of a job item owes.

The table streams NEW_AND_OLD_IMAGES: each record carries the item as one write left it and as it was
just before. What that write owes is what the new image's outbox holds and the old one's did not
(models/outbox.py::newly_owed), so:

- only the write that made a decision delivers the decision's events. The writes that follow it owe
  nothing: an attempt's progress and a submission also REMOVE the outbox (adapters/store.py), so their
  records do not even pass the function's filter (no invocation), and a write that kept it would
  still owe nothing;
- it holds under at-least-once delivery and in any order: a record is judged on its own two images,
  never on what the consumer saw before, so a record delivered twice owes the same events twice (under
  the same ids, which consumers drop), and a late one still owes exactly what its write added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchplane.adapters.job_items import item_to_job
from batchplane.models.job import Job, JobStatus
from batchplane.models.outbox import OwedEvent, newly_owed

JOB_SORT_KEY = "JOB"


@dataclass(frozen=True)
class OwedByWrite:
    """A write of a job item that owes events: the job as the write left it, and what it owes."""

    job: Job  # the item alone: it may hold only the latest attempts (lifecycle/outbox.py)
    owed: list[OwedEvent]


def owed_by_write(
    new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None
) -> OwedByWrite | None:
    """What the write of a stream record owes; None for a record of another item, a deletion, or a
    write that owes nothing new. The images are in DynamoDB's attribute-value form, as streamed."""
    if not new_image or new_image.get("sk", {}).get("S") != JOB_SORT_KEY or not new_image.get("outbox"):
        return None
    job = item_to_job(dict(new_image))
    owed = newly_owed(job.outbox, _outbox_of(old_image or {}))
    return OwedByWrite(job=job, owed=owed) if owed else None


@dataclass(frozen=True)
class FreedSlot:
    """A write that took a job out of flight: a slot of its tenant's job type is free."""

    tenant: str
    job_type: str


def freed_slot(new_image: Mapping[str, Any] | None, old_image: Mapping[str, Any] | None) -> FreedSlot | None:
    """The slot a write of a job item gave back (an in-flight job finished or was cancelled); None for
    any other write. Every such write owes its "Job ..." event, so it passes the outbox's filter."""
    if not new_image or not old_image or new_image.get("sk", {}).get("S") != JOB_SORT_KEY:
        return None
    before, after = _status_of(old_image), _status_of(new_image)
    if before is None or after is None or not before.is_in_flight or after.is_in_flight:
        return None
    return FreedSlot(tenant=new_image["tenant"]["S"], job_type=new_image["job_type"]["S"])


def _status_of(image: Mapping[str, Any]) -> JobStatus | None:
    value = image.get("status", {}).get("S")
    return JobStatus(value) if value in JobStatus.__members__ else None


def _outbox_of(image: Mapping[str, Any]) -> list[OwedEvent]:
    """The outbox an image holds, read on its own: the rest of an old image is not needed."""
    stored = image.get("outbox")
    if not stored:
        return []
    from boto3.dynamodb.types import TypeDeserializer  # loaded at first use, as job_items does

    return [OwedEvent.model_validate(entry) for entry in TypeDeserializer().deserialize(stored)]
