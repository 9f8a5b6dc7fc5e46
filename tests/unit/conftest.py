"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from batchplane.models.job import Job
from tests.unit.jobs import queued_job


@pytest.fixture
def new_job() -> Job:
    """tests/unit/jobs.py::queued_job, made anew for each test."""
    return queued_job()
