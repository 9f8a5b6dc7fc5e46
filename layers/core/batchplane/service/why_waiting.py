"""Why a job waits in Batch, for GET /jobs/{job_id}: its attempt's state and Batch's reason, and its
place among the first 100 RUNNABLE jobs of its queue from the sweeper's latest snapshot of that queue
(one item read, only for a RUNNABLE job; Batch itself is not called per request)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchplane.lifecycle.why_waiting import waiting_of, waits_in_queue

if TYPE_CHECKING:
    from batchplane.models.job import Job
    from batchplane.models.waiting import Waiting
    from batchplane.service.ports import Ports


def waiting(ports: Ports, job: Job) -> Waiting | None:
    queue = waits_in_queue(job)
    return waiting_of(job, ports.sweeps.queue_front(queue) if queue is not None else None)
