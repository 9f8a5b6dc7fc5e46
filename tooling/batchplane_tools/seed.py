"""Many unfinished jobs at once, for the sweeper's tests and bench/sweep_scale.py: the job item and its
index entry exactly as the store writes them (adapters/job_items.py::job_to_item,
adapters/job_index.py::index_item), sent 25 at a time with BatchWriteItem instead of one creating
transaction each; and a Batch client that answers DescribeJobs and GetJobQueueSnapshot for them from
events/batch/ fixtures, counting its calls."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchplane.adapters.dynamo_calls import put_all
from batchplane.adapters.job_index import index_item
from batchplane.adapters.job_items import job_to_item
from batchplane.models.job import Attempt, AttemptStatus, Capacity, Job, JobStatus
from batchplane_tools.fixtures import load_event

SEED_WRITE = 500  # jobs built and written per round: memory stays flat whatever the count

# The states a seeded job cycles through (a job in Batch's hands has a Batch job of its own).
MIX = (JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.SUBMITTED)


def seeded_job(number: int, *, queue: str, job_types: list[str], at: datetime, status: JobStatus) -> Job:
    """Unfinished job `number`: its Batch job id is `batch-<number>`, its attempt in `status`."""
    job_id = f"00000000-0000-4000-8000-{number:012d}"
    attempt = Attempt(
        number=1,
        batch_job_id=f"batch-{number}",
        job_name=f"bp-{job_id}-1",
        queue=queue,
        job_definition="batchplane-word-count",
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=512,
        status=AttemptStatus(status.value),
        submitted_at=at,
        runnable_at=at if status is not JobStatus.SUBMITTED else None,
        started_at=at if status is JobStatus.RUNNING else None,
    )
    return Job(
        job_id=job_id,
        tenant=f"tenant-{number % 7}",
        job_type=job_types[number % len(job_types)],
        status=status,
        parameters={"input": f"s3://bucket/incoming/tenant-{number % 7}/{number}.txt"},
        vcpus=1,
        memory_mib=512,
        capacity=Capacity.SPOT,
        output_prefix=f"outputs/tenant-{number % 7}/{job_id}/",
        created_at=at,
        updated_at=at,
        attempts=[attempt],
    )


def seed_unfinished(
    client: Any, table: str, count: int, *, queue: str, job_types: list[str], at: datetime
) -> dict[str, JobStatus]:
    """Write `count` unfinished jobs (states cycling through MIX); their Batch job ids and states."""
    states: dict[str, JobStatus] = {}
    for start in range(0, count, SEED_WRITE):
        items: list[dict[str, Any]] = []
        for number in range(start, min(count, start + SEED_WRITE)):
            status = MIX[number % len(MIX)]
            job = seeded_job(number, queue=queue, job_types=job_types, at=at, status=status)
            items += [job_to_item(job), index_item(job, timedelta(days=90))]
            states[f"batch-{number}"] = status
        put_all(client, table, items)
    return states


@dataclass
class SeededBatch:
    """A boto3 batch client's DescribeJobs and GetJobQueueSnapshot for seeded jobs: each is described
    in the state it was seeded in (so a sweep finds nothing new and writes nothing), from the
    running.json fixture's shape. Every DescribeJobs call's ids are kept."""

    states: dict[str, JobStatus]
    described: list[list[str]] = field(default_factory=list)
    snapshots: int = 0
    _shape: dict[str, Any] = field(default_factory=lambda: load_event("batch/running.json")["detail"])

    def describe_jobs(self, *, jobs: list[str]) -> dict[str, Any]:
        self.described.append(list(jobs))
        return {"jobs": list(self._details(jobs))}

    def _details(self, ids: list[str]) -> Iterator[dict[str, Any]]:
        for batch_id in ids:
            number = int(batch_id.removeprefix("batch-"))
            detail = copy.deepcopy(self._shape)
            detail.update(
                jobId=batch_id,
                jobName=f"bp-00000000-0000-4000-8000-{number:012d}-1",
                status=self.states[batch_id].value,
            )
            yield detail

    def get_job_queue_snapshot(self, *, jobQueue: str) -> dict[str, Any]:
        self.snapshots += 1
        runnable = [i for i, s in self.states.items() if s is JobStatus.RUNNABLE][:100]
        arn = "arn:aws:batch:us-east-1:123456789012:job/"
        return {
            "frontOfQueue": {
                "jobs": [{"jobArn": arn + i} for i in runnable],
                "lastUpdatedAt": int(time.time() * 1000),
            }
        }
