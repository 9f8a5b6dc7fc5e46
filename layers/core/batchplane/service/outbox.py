"""Delivering the outbox: publishing the alerts and job events a write of a job owes.

A decision is written with the events it owes (lifecycle/outbox.py::owing), in one write; the jobs
table's stream hands that write to the outbox function (functions/outbox/app.py), which calls
`deliver`. A publish that fails raises: the stream delivers the record again and its events are
published again, under the same ids, so each is published at least once and a consumer drops a
duplicate by its `event_id`.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchplane.lifecycle.outbox import lacks_earlier_attempts, with_earlier_attempts
from batchplane.models.job import Job
from batchplane.models.outbox import OwedEvent, OwedKind
from batchplane.observability import logger
from batchplane.service.ports import Ports


def deliver(ports: Ports, job: Job, owed: Sequence[OwedEvent]) -> None:
    """Publish, in order, what the write that left `job` as it is owes.

    `job` is the item as that write left it, so an event speaks of the job as it was decided, not as
    it is by the time the event goes out; only the attempts the item no longer holds are read.
    """
    if not owed:
        return
    if lacks_earlier_attempts(job):
        job = with_earlier_attempts(job, ports.store.get(job.job_id))
    for event in owed:
        if event.kind is OwedKind.ALERT:
            ports.notify.alert(event.subject, job, event_id=event.event_id)
        else:
            ports.notify.job_event(event.subject, job, event_id=event.event_id)
        logger.info(
            "owed event published",
            extra={"job_id": job.job_id, "event_id": event.event_id, "subject": event.subject},
        )
