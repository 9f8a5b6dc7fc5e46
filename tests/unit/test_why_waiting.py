"""Why a job waits (lifecycle/waiting.py): its attempt's state, Batch's reason, since when, and its
place among the first 100 RUNNABLE jobs of its queue when the sweeper's snapshot says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from batchplane.lifecycle.why_waiting import waiting_of, waits_in_queue
from batchplane.models.job import Attempt, AttemptStatus, Capacity, Job, JobStatus
from batchplane.models.waiting import QueueFront

QUEUE = "arn:aws:batch:us-east-1:123456789012:job-queue/spot"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
REASON = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - There is no Spot capacity available"


def job_in(status: JobStatus, *, reason: str | None = None) -> Job:
    attempt = Attempt(
        number=1,
        batch_job_id="b-1",
        job_name="bp-j-1",
        queue=QUEUE,
        job_definition="wc",
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=512,
        status=AttemptStatus(status.value)
        if status.value in AttemptStatus.__members__
        else AttemptStatus.SUBMITTED,
        status_reason=reason,
        submitted_at=T0,
        runnable_at=T0 + timedelta(minutes=1) if status is JobStatus.RUNNABLE else None,
    )
    return Job(
        job_id="j",
        tenant="analytics",
        job_type="word-count",
        status=status,
        parameters={},
        vcpus=1,
        memory_mib=512,
        capacity=Capacity.SPOT,
        output_prefix="outputs/analytics/j/",
        created_at=T0,
        updated_at=T0 + timedelta(minutes=2),
        attempts=[attempt],
    )


def front(*ids: str, at: datetime = T0 + timedelta(minutes=5)) -> QueueFront:
    return QueueFront(queue=QUEUE, batch_job_ids=list(ids), as_of=at)


def test_a_runnable_job_in_the_snapshot_has_its_place_reason_and_since() -> None:
    job = job_in(JobStatus.RUNNABLE, reason=REASON)

    waiting = waiting_of(job, front("a", "b", "b-1"))

    assert waiting is not None
    assert (waiting.status, waiting.reason, waiting.position) == (AttemptStatus.RUNNABLE, REASON, 3)
    assert waiting.since == T0 + timedelta(minutes=1)
    assert waiting.position_as_of == T0 + timedelta(minutes=5)


def test_a_runnable_job_behind_the_first_hundred_has_no_place_and_says_so() -> None:
    waiting = waiting_of(job_in(JobStatus.RUNNABLE), front(*(f"x{n}" for n in range(100))))

    assert waiting is not None
    assert waiting.position is None
    assert waiting.position_note == "not in the first 100 RUNNABLE jobs of its queue"


def test_a_snapshot_older_than_the_wait_does_not_say_the_job_is_behind() -> None:
    waiting = waiting_of(job_in(JobStatus.RUNNABLE), front("x", at=T0))

    assert waiting is not None
    assert waiting.position is None
    assert waiting.position_note == "the latest snapshot of the job queue is older than the wait"


def test_without_a_snapshot_a_runnable_job_waits_without_a_place() -> None:
    waiting = waiting_of(job_in(JobStatus.RUNNABLE), None)

    assert waiting is not None
    assert waiting.position_note.startswith("no snapshot of the job queue yet")


def test_only_a_runnable_job_is_looked_for_in_its_queue() -> None:
    assert waits_in_queue(job_in(JobStatus.RUNNABLE)) == QUEUE
    for status in (JobStatus.SUBMITTED, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.QUEUED):
        assert waits_in_queue(job_in(status)) is None


def test_jobs_not_waiting_in_batch_have_no_wait() -> None:
    for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRY_WAIT, JobStatus.SUCCEEDED):
        assert waiting_of(job_in(status), None) is None
    starting = waiting_of(job_in(JobStatus.STARTING), front("b-1"))
    assert starting is not None
    assert (starting.position, starting.since) == (None, T0 + timedelta(minutes=2))
