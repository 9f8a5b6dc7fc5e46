"""The outbox's pure parts: what a write owes (ids, replacement), what one stream record adds, the
job an event speaks of, and reading a write's images (the sample stream event included)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from batchplane.adapters.job_items import job_to_item
from batchplane.adapters.job_stream import owed_by_write
from batchplane.lifecycle.outbox import lacks_earlier_attempts, owing, with_earlier_attempts
from batchplane.models.job import Attempt, AttemptStatus, Capacity, Job, JobStatus
from batchplane.models.outbox import JobEventType, OwedEvent, OwedKind, newly_owed
from tests.support import load_event

NOW = datetime(2025, 11, 28, 16, tzinfo=UTC)


def attempt(number: int, status: AttemptStatus = AttemptStatus.FAILED) -> Attempt:
    return Attempt(
        number=number,
        batch_job_id=f"batch-{number}",
        job_name=f"bp-j-{number}",
        queue="q",
        job_definition="d",
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=512,
        status=status,
        submitted_at=NOW,
    )


@pytest.fixture
def job(new_job: Job) -> Job:
    """A job read at version 7, as a decision sees it: attempt 1 RUNNING."""
    return new_job.model_copy(
        update={
            "tenant": "t",
            "job_type": "word-count",
            "status": JobStatus.RUNNING,
            "attempts": [attempt(1, AttemptStatus.RUNNING)],
            "version": 7,
        }
    )


def test_a_decision_owes_its_alert_and_job_event_under_ids_of_the_version_it_was_made_on(job: Job) -> None:
    # When a give-up is written owing an alert and "Job Failed"
    failed = owing(job, alert="job j failed: boom", job_event=JobEventType.FAILED)

    # Then the job carries both, alert first, each with an id of the job, the version and the kind
    assert failed.outbox == [
        OwedEvent(event_id="j:7:alert", kind=OwedKind.ALERT, subject="job j failed: boom"),
        OwedEvent(event_id="j:7:job_event", kind=OwedKind.JOB_EVENT, subject="Job Failed"),
    ]
    # and nothing else of the job changed
    assert failed.model_copy(update={"outbox": []}) == job


def test_the_same_decision_owes_the_same_ids(job: Job) -> None:
    # Given one decision made twice on the same read (a retry after a conflict reads again, and a
    # read of a newer version makes other ids)
    once, twice = (owing(job, job_event=JobEventType.SUCCEEDED) for _ in range(2))

    # Then the ids are the same: stable
    assert once.outbox == twice.outbox
    assert (
        owing(job.model_copy(update={"version": 8}), job_event=JobEventType.SUCCEEDED).outbox != once.outbox
    )


def test_a_write_that_owes_nothing_clears_what_an_earlier_write_owed(job: Job) -> None:
    # Given a job whose last write owed "Job Retrying"
    retrying = owing(job, job_event=JobEventType.RETRYING)

    # When the next write owes nothing (a manual retry, an attempt recorded after the job moved on)
    later = owing(retrying.model_copy(update={"version": 9}))

    # Then its outbox is empty: the item holds only what its latest write owes
    assert later.outbox == []


@pytest.fixture
def retrying(job: Job) -> list[OwedEvent]:
    return owing(job, job_event=JobEventType.RETRYING).outbox


@pytest.fixture
def failed(job: Job) -> list[OwedEvent]:
    later = job.model_copy(update={"version": 12})
    return owing(later, alert="job j failed: boom", job_event=JobEventType.FAILED).outbox


def test_a_write_owes_what_its_new_image_holds_and_its_old_one_did_not(
    retrying: list[OwedEvent], failed: list[OwedEvent]
) -> None:
    # A decision's write: the new image holds its events, the old one an earlier decision's
    assert newly_owed(failed, retrying) == failed
    # A write that left the outbox alone (progress, submission, touch): nothing
    assert newly_owed(retrying, retrying) == []
    # The first write that owes anything (no old image, or an empty outbox before it)
    assert newly_owed(retrying, []) == retrying
    # A write that cleared it
    assert newly_owed([], retrying) == []


def test_an_event_speaks_of_every_attempt_even_when_the_item_holds_only_the_latest(job: Job) -> None:
    # Given the image of a write that holds attempts 3 and 4 only, and the job as stored now
    image = job.model_copy(update={"attempts": [attempt(3), attempt(4)]})
    stored = job.model_copy(update={"attempts": [attempt(n) for n in (1, 2, 3, 4, 5)]})

    # Then the image lacks its earlier attempts, which come from the stored job, and the image's
    # own attempts (and nothing after them) stay as the write left them
    assert lacks_earlier_attempts(image)
    complete = with_earlier_attempts(image, stored)
    assert [a.number for a in complete.attempts] == [1, 2, 3, 4]
    assert complete.attempts[2:] == image.attempts
    # A job item that holds every attempt needs nothing read
    assert not lacks_earlier_attempts(job)
    assert with_earlier_attempts(job, None) == job


def image_of(job: Job) -> dict[str, Any]:
    return job_to_item(job)


def test_a_stream_record_of_a_decision_owes_its_events(job: Job) -> None:
    # Given a give-up's write: its old image owed a retry, its new one the give-up's events
    old = owing(job, job_event=JobEventType.RETRYING)
    new = owing(
        job.model_copy(update={"status": JobStatus.FAILED, "version": 8}),
        alert="job j failed: boom",
        job_event=JobEventType.FAILED,
    )

    # When the record is read
    write = owed_by_write(image_of(new), image_of(old))

    # Then it owes the give-up's two events, and speaks of the job as the write left it
    assert write is not None
    assert [e.event_id for e in write.owed] == ["j:8:alert", "j:8:job_event"]
    assert write.job.status is JobStatus.FAILED


@pytest.mark.parametrize(
    "case",
    ["progress after a decision", "a write that owes nothing", "a deletion", "another item"],
)
def test_a_stream_record_that_owes_nothing_new_is_left_alone(job: Job, case: str) -> None:
    owes = owing(job, job_event=JobEventType.RETRYING)
    new, old = {
        "progress after a decision": (image_of(owes.model_copy(update={"version": 9})), image_of(owes)),
        "a write that owes nothing": (image_of(job), None),
        "a deletion": (None, image_of(owes)),
        "another item": ({"pk": {"S": "TENANT#t"}, "sk": {"S": "INFLIGHT#word-count"}}, None),
    }[case]

    assert owed_by_write(new, old) is None


@pytest.mark.parametrize("fixture", ["dynamodb/job_outbox.json", "dynamodb/job_outbox_earlier_layout.json"])
def test_the_sample_stream_event_owes_a_give_ups_alert_and_job_event(fixture: str) -> None:
    # Given a real-shaped record of a give-up's write: as this release writes the job item, and as an
    # earlier one did (events/README.md)
    [record] = load_event(fixture)["Records"]
    change = record["dynamodb"]

    # When it is read
    write = owed_by_write(change["NewImage"], change.get("OldImage"))

    # Then it owes the alert and "Job Failed" of version 5's decision
    assert record["eventSource"] == "aws:dynamodb"
    assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert write is not None
    assert [(e.kind, e.event_id) for e in write.owed] == [
        (OwedKind.ALERT, "0d9f7c1e-3b2a-4f6e-9a51-7c2b8e4d1a90:5:alert"),
        (OwedKind.JOB_EVENT, "0d9f7c1e-3b2a-4f6e-9a51-7c2b8e4d1a90:5:job_event"),
    ]
    assert write.job.status is JobStatus.FAILED
