"""Held jobs' pure parts: holding and releasing a job, what counts as in flight, and which stream
records free a slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from batchplane.adapters.job_items import job_to_item
from batchplane.adapters.job_stream import FreedSlot, freed_slot
from batchplane.errors import InvalidTransition
from batchplane.lifecycle import transitions
from batchplane.models.job import Job, JobStatus

NOW = datetime(2025, 11, 28, 16, tzinfo=UTC)
REASON = "in-flight limit 100 of sort-large reached"


def test_a_new_job_over_the_limit_is_held_with_its_reason(new_job: Job) -> None:
    held = transitions.hold(new_job, reason=REASON)

    assert held.status is JobStatus.HELD
    assert held.held_reason == REASON
    assert [(h.event, h.reason) for h in held.history] == [("held", REASON)]
    # held: unfinished, but not in flight (no slot)
    assert not held.status.is_terminal and not held.status.is_in_flight


def test_a_held_job_released_is_queued_and_says_how_long_it_waited(new_job: Job) -> None:
    held = transitions.hold(new_job, reason=REASON)

    released = transitions.release(held, now=NOW + timedelta(seconds=42), reason="a slot freed")

    assert released.status is JobStatus.QUEUED and released.status.is_in_flight
    assert released.held_reason is None
    assert released.history[-1].event == "released"
    assert released.history[-1].reason == "a slot freed; held 42 s"


def test_only_a_held_job_is_released_and_only_a_new_one_held(new_job: Job) -> None:
    with pytest.raises(InvalidTransition):
        transitions.release(new_job, now=NOW, reason="a slot freed")
    cancelled = transitions.cancel(transitions.hold(new_job, reason=REASON), now=NOW, requested_by="alice")
    with pytest.raises(InvalidTransition):
        transitions.release(cancelled, now=NOW, reason="a slot freed")
    with pytest.raises(InvalidTransition):
        transitions.hold(cancelled, reason=REASON)


@pytest.mark.parametrize(
    ("before", "after", "freed"),
    [
        (JobStatus.RUNNING, JobStatus.SUCCEEDED, True),
        (JobStatus.QUEUED, JobStatus.CANCELLED, True),
        (JobStatus.RETRY_WAIT, JobStatus.FAILED, True),
        (JobStatus.HELD, JobStatus.CANCELLED, False),  # a held job had no slot
        (JobStatus.HELD, JobStatus.QUEUED, False),  # a release takes one
        (JobStatus.RUNNABLE, JobStatus.RUNNING, False),
    ],
)
def test_a_write_frees_a_slot_when_it_takes_a_job_out_of_flight(
    new_job: Job, before: JobStatus, after: JobStatus, freed: bool
) -> None:
    old = job_to_item(new_job.model_copy(update={"status": before}))
    new = job_to_item(new_job.model_copy(update={"status": after}))

    expected = FreedSlot(tenant="analytics", job_type="sort-large") if freed else None
    assert freed_slot(new, old) == expected


def test_a_record_of_another_item_or_without_its_old_image_frees_nothing(new_job: Job) -> None:
    old = job_to_item(new_job.model_copy(update={"status": JobStatus.RUNNING}))
    new = job_to_item(new_job.model_copy(update={"status": JobStatus.SUCCEEDED}))

    assert freed_slot(new, None) is None
    assert freed_slot({**new, "sk": {"S": "INDEX"}}, {**old, "sk": {"S": "INDEX"}}) is None
