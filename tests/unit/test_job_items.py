"""The job item's bytes: what a write leaves out because it reads back the same without it."""

from __future__ import annotations

from batchplane.adapters.job_items import item_to_job, job_to_item, to_av
from batchplane.models.job import Artifact, ArtifactRole, CostBook, Job
from batchplane.models.outbox import OwedEvent


def test_a_new_job_item_repeats_neither_its_id_nor_what_is_empty(new_job: Job) -> None:
    # Given a job as admission makes it (new_job: nothing read, written, owed or charged)
    # When it is written
    item = job_to_item(new_job)

    # Then its id is in its key only, and nothing empty or at its default is written
    assert item["pk"] == {"S": f"JOB#{new_job.job_id}"}
    assert not {"job_id", "inputs", "artifacts", "outbox", "cost_book"} & set(item)
    # And history stays, even empty: submissions append to it in place (list_append)
    assert "history" in item
    # And it reads back as the same job
    assert item_to_job(item) == new_job


def test_what_a_job_holds_is_written_and_read_back(new_job: Job) -> None:
    # Given a job with inputs, an artifact, an owed event and a charge
    job = new_job.model_copy(
        update={
            "inputs": ["s3://ingest/incoming/analytics/word-count/notes.txt"],
            "artifacts": [Artifact(uri="s3://artifacts/a.txt", role=ArtifactRole.OUTPUT, attempt=1)],
            "outbox": [OwedEvent(event_id=f"{new_job.job_id}:2:job_event", kind="job_event", subject="Done")],
            "cost_book": CostBook(charged=2209),
        }
    )

    # When it is written, Then each is in the item and reads back
    item = job_to_item(job)
    assert {"inputs", "artifacts", "outbox", "cost_book"} <= set(item)
    assert item_to_job(item) == job


def test_an_item_the_release_before_wrote_reads_the_same(new_job: Job) -> None:
    # Given the item as the release before wrote it: its id and every empty attribute spelled out
    earlier = {
        **job_to_item(new_job),
        "job_id": {"S": new_job.job_id},
        "inputs": {"L": []},
        "artifacts": {"L": []},
        "outbox": {"L": []},
        "cost_book": to_av({"reserved": 0, "charged": 0, "charged_extra": 0}),
    }

    # When it is read, Then it is the same job
    assert item_to_job(earlier) == new_job


def test_a_cost_book_with_only_its_month_is_written(new_job: Job) -> None:
    # Given a job held for its budget and released into a month, with nothing reserved (a zero estimate)
    job = new_job.model_copy(update={"cost_book": CostBook(month="2026-12")})

    # When it is written, Then the month is kept: its finish is charged to that month
    item = job_to_item(job)
    assert "cost_book" in item
    assert item_to_job(item).cost_book.month == "2026-12"
