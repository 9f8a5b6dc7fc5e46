"""The job item's bytes: what a write leaves out because it reads back the same without it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from batchplane.adapters.job_items import item_to_job, job_to_item, to_av
from batchplane.models.job import Artifact, ArtifactRole, Capacity, CostBook, Job, JobStatus
from batchplane.models.outbox import OwedEvent

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)


@pytest.fixture
def made() -> Job:
    """A job as admission makes it: nothing read, written, owed or charged yet."""
    return Job(
        job_id="0b6e4a52-3c1f-4d3e-9a51-6f0d2b7c8e91",
        tenant="analytics",
        job_type="word-count",
        status=JobStatus.QUEUED,
        parameters={"input": "s3://ingest/incoming/analytics/word-count/notes.txt"},
        vcpus=1,
        memory_mib=512,
        capacity=Capacity.ON_DEMAND,
        output_prefix="s3://artifacts/outputs/analytics/0b6e4a52-3c1f-4d3e-9a51-6f0d2b7c8e91/",
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_new_job_item_repeats_neither_its_id_nor_what_is_empty(made: Job) -> None:
    # When the job is written
    item = job_to_item(made)

    # Then its id is in its key only, and nothing empty or at its default is written
    assert item["pk"] == {"S": f"JOB#{made.job_id}"}
    assert not {"job_id", "inputs", "artifacts", "outbox", "cost_book"} & set(item)
    # And history stays, even empty: submissions append to it in place (list_append)
    assert "history" in item
    # And it reads back as the same job
    assert item_to_job(item) == made


def test_what_a_job_holds_is_written_and_read_back(made: Job) -> None:
    # Given a job with inputs, an artifact, an owed event and a charge
    job = made.model_copy(
        update={
            "inputs": ["s3://ingest/incoming/analytics/word-count/notes.txt"],
            "artifacts": [Artifact(uri="s3://artifacts/a.txt", role=ArtifactRole.OUTPUT, attempt=1)],
            "outbox": [OwedEvent(event_id=f"{made.job_id}:2:job_event", kind="job_event", subject="Done")],
            "cost_book": CostBook(charged=2209),
        }
    )

    # When it is written, Then each is in the item and reads back
    item = job_to_item(job)
    assert {"inputs", "artifacts", "outbox", "cost_book"} <= set(item)
    assert item_to_job(item) == job


def test_an_item_the_release_before_wrote_reads_the_same(made: Job) -> None:
    # Given the item as the release before wrote it: its id and every empty attribute spelled out
    earlier = {
        **job_to_item(made),
        "job_id": {"S": made.job_id},
        "inputs": {"L": []},
        "artifacts": {"L": []},
        "outbox": {"L": []},
        "cost_book": to_av({"reserved": 0, "charged": 0, "charged_extra": 0}),
    }

    # When it is read, Then it is the same job
    assert item_to_job(earlier) == made
