"""Jobs the unit tests build on: made here once, each test changing only what it is about."""

from __future__ import annotations

from datetime import UTC, datetime

from batchplane.models.job import Capacity, Job, JobStatus

MADE_AT = datetime(2025, 11, 28, 16, tzinfo=UTC)


def queued_job() -> Job:
    """A job as admission builds it: QUEUED, no attempt yet, nothing read, written, owed or charged."""
    return Job(
        job_id="j",
        tenant="analytics",
        job_type="sort-large",
        status=JobStatus.QUEUED,
        parameters={"input": "s3://b/incoming/analytics/sort/a.csv"},
        vcpus=1,
        memory_mib=256,
        capacity=Capacity.SPOT,
        output_prefix="s3://o/outputs/analytics/j/",
        created_at=MADE_AT,
        updated_at=MADE_AT,
        source="file-drop",
    )
