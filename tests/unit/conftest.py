"""Fixtures the unit tests share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchplane.models.job import Capacity, Job, JobStatus

MADE_AT = datetime(2025, 11, 28, 16, tzinfo=UTC)


@pytest.fixture
def new_job() -> Job:
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
