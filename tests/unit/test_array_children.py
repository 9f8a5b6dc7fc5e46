"""Array children's pure parts and the state-change paths that need no job store: which names are
batchplane's arrays, what Batch's child and parent events carry, whether a job still wants a child,
and what a parent's event and a hole's child do (with an in-memory ArrayBook and a recording Batch)."""

from __future__ import annotations

from typing import Any

import pytest

from batchplane.lifecycle.array_children import Standing, is_its_batch_job, standing
from batchplane.lifecycle.attempts import progress_of
from batchplane.models.batch_event import BatchJobDetail, job_detail_of
from batchplane.models.job import Attempt, AttemptStatus, Capacity, Job, JobStatus
from batchplane.policy.document import load_policy
from batchplane.policy.routing import Queues, child_job_id, parse_array_name, parse_job_name
from batchplane.service.ports import ArrayMember, Ports
from batchplane.service.state_change import Outcome, handle_state_change
from tests.support import POLICY_PATH, load_event
from tests.unit.jobs import MADE_AT, queued_job

NOW = MADE_AT
ARRAY = "bp-array-5c0e8f1a2b3d4c6e7f809a1b"
PARENT = "c7e2a9f4-1b3d-4e6a-8f05-2d9b7c1e4a63"


def detail(fixture: str) -> BatchJobDetail:
    event = load_event(f"batch/{fixture}.json")
    return job_detail_of(event["detail-type"], event["detail"])


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        (ARRAY, ARRAY),
        ("bp-array-" + "1" * 24, "bp-array-" + "1" * 24),  # all digits: still an array, not job "array"
        ("bp-array-5E0C2A9F1B7D43E68A0C2F91", None),  # upper case is not ours
        ("bp-array-5e0c2a9f1b7d43e68a0c2f9", None),  # 23 digits
        ("bp-array-5c0e8f1a2b3d4c6e7f809a1ba", None),  # 25 digits
        ("bp-array-5e0c2a9f1b7d43e68a0c2g91", None),  # not hex
        ("bp-0d9f7c1e-3b2a-4f6e-9a51-7c2b8e4d1a90-1", None),  # a single job's attempt
        ("nightly-etl", None),
    ],
)
def test_only_batchplane_array_names_parse(name: str, parsed: str | None) -> None:
    assert parse_array_name(name) == parsed


def test_an_all_digit_array_name_would_read_as_a_job_attempt_without_the_array_check() -> None:
    # why handle_state_change asks parse_array_name first
    assert parse_job_name("bp-array-" + "1" * 24) == ("array", int("1" * 24))


def test_a_childs_event_carries_its_index_and_the_parents_its_size() -> None:
    child, parent, single = detail("array_child_running"), detail("array_parent_pending"), detail("running")

    assert (child.array_index, child.array_size, child.job_name) == (0, None, ARRAY)
    assert child.job_id == child_job_id(PARENT, 0)
    assert (parent.array_index, parent.array_size, parent.job_id) == (None, 3, PARENT)
    assert (single.array_index, single.array_size) == (None, None)


def test_a_childs_progress_names_its_array_place_and_a_single_jobs_none() -> None:
    child = progress_of(detail("array_child_running"), 1, AttemptStatus.RUNNING, NOW)
    single = progress_of(detail("running"), 1, AttemptStatus.RUNNING, NOW)

    assert (child.array_name, child.array_index, child.batch_job_id) == (ARRAY, 0, f"{PARENT}:0")
    assert (single.array_name, single.array_index) == (None, None)


def claimed_job(*, job_status: JobStatus = JobStatus.SUBMITTED, **attempt: Any) -> Job:
    """A job whose attempt 1 was claimed at index 0 of ARRAY, as the coalescer leaves it."""
    fields: dict[str, Any] = {
        "number": 1,
        "job_name": ARRAY,
        "queue": "spot",
        "job_definition": "sort-large",
        "capacity": Capacity.SPOT,
        "vcpus": 1,
        "memory_mib": 256,
        "submitted_at": NOW,
        "array_name": ARRAY,
        "array_index": 0,
        **attempt,
    }
    made = queued_job()
    return made.model_copy(
        update={"status": job_status, "parameters": {}, "source": "api", "attempts": [Attempt(**fields)]}
    )


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (claimed_job(), Standing.WANTED),  # claimed here, not yet named by an event
        (claimed_job(batch_job_id=f"{PARENT}:0"), Standing.WANTED),  # named by an earlier event
        (claimed_job(job_status=JobStatus.RUNNING, status=AttemptStatus.RUNNING), Standing.WANTED),
        (claimed_job(job_status=JobStatus.CANCELLED), Standing.UNWANTED),  # cancelled before the array ran
        (claimed_job(job_status=JobStatus.QUEUED), Standing.UNWANTED),  # a manual retry waits for attempt 2
        (claimed_job(array_index=7), Standing.UNWANTED),  # claimed at another place
        (claimed_job(array_name="bp-array-" + "0" * 24), Standing.UNWANTED),  # by another array
        (claimed_job(batch_job_id="6b1f0c52-9d3e-4a7b-8e21-f4c5a9d07b13"), Standing.UNWANTED),  # ran alone
        (claimed_job(batch_job_id=f"{PARENT}:0", status=AttemptStatus.FAILED), Standing.ENDED),
        (None, Standing.UNWANTED),  # the job is gone
    ],
)
def test_a_job_wants_a_child_only_as_its_current_attempt_claimed_at_that_place(
    job: Job | None, expected: Standing
) -> None:
    assert standing(job, 1, detail("array_child_running")) is expected


def test_a_single_jobs_attempt_is_its_batch_job_by_id_only() -> None:
    running = detail("running")
    alone = claimed_job(batch_job_id=running.job_id, array_name=None, array_index=None).attempts[0]
    unnamed = claimed_job(array_name=None, array_index=None).attempts[0]

    assert is_its_batch_job(alone, running)
    assert not is_its_batch_job(unnamed, running)


# -- the state-change paths that need no job store: an in-memory ArrayBook, a recording Batch ---------


class InMemoryArrayBook:
    def __init__(self, members: dict[int, str], *, parent: str | None = None) -> None:
        self.members, self.parent, self.recorded = members, parent, 0

    def member(self, array_name: str, index: int) -> ArrayMember | None:
        job_id, _, attempt = self.members.get(index, "").rpartition("#")
        return ArrayMember(array_name, index, job_id, int(attempt)) if job_id else None

    def parent_of(self, array_name: str) -> str | None:
        return self.parent

    def record_parent(self, array_name: str, parent_job_id: str) -> bool:
        if self.parent is not None:
            return False
        self.parent, self.recorded = parent_job_id, self.recorded + 1
        return True


class RecordingBatch:
    def __init__(self) -> None:
        self.terminated: list[tuple[str, str]] = []

    def terminate(self, batch_job_id: str, reason: str) -> None:
        self.terminated.append((batch_job_id, reason))


class UntouchedStore:
    """What a parent's event and a hole's child must never read or write."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the job store was used: {name}")


def ports_with(arrays: InMemoryArrayBook, batch: RecordingBatch) -> Ports:
    return Ports(
        store=UntouchedStore(),  # type: ignore[arg-type]
        dispatch=UntouchedStore(),  # type: ignore[arg-type]
        batch=batch,  # type: ignore[arg-type]
        manifests=UntouchedStore(),  # type: ignore[arg-type]
        policy=load_policy(POLICY_PATH),
        queues=Queues(spot="spot", on_demand="on-demand"),
        notify=UntouchedStore(),  # type: ignore[arg-type]
        operations=UntouchedStore(),  # type: ignore[arg-type]
        sweeps=UntouchedStore(),  # type: ignore[arg-type]
        arrays=arrays,
        artifact_bucket="artifacts",
        clock=lambda: NOW,
    )


def test_a_parents_event_records_the_parent_once_and_changes_no_job() -> None:
    # Given an array Batch accepted whose parent was never recorded
    arrays, batch = InMemoryArrayBook({0: "j#1"}), RecordingBatch()
    ports = ports_with(arrays, batch)

    # When its parent's event arrives twice
    outcomes = [handle_state_change(ports, detail("array_parent_pending")).outcome for _ in range(2)]

    # Then the parent is recorded by the first, and nothing else happens
    assert outcomes == [Outcome.IGNORED, Outcome.IGNORED]
    assert (arrays.parent, arrays.recorded) == (PARENT, 1)
    assert batch.terminated == []


def test_a_holes_child_is_terminated_by_its_own_id_without_reading_a_job() -> None:
    # Given an array whose index 0 is a hole
    batch = RecordingBatch()
    ports = ports_with(InMemoryArrayBook({}, parent=PARENT), batch)

    # When that child's non-terminal event, then its end, arrive
    handled = handle_state_change(ports, detail("array_child_running"))
    ended = handle_state_change(ports, detail("array_child_succeeded"))

    # Then the child alone is terminated, once, with a reason; its end is ignored
    assert (handled.outcome, ended.outcome) == (Outcome.UNWANTED, Outcome.IGNORED)
    assert batch.terminated == [(f"{PARENT}:0", f"batchplane: index 0 of {ARRAY} is no job's")]
