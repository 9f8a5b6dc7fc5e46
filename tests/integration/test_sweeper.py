"""The sweeper repairs what lost events and lost messages left behind, through the same code paths."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batchplane.models.batch_event import BatchJobDetail
from batchplane.wiring import ports
from tests.support import (
    LambdaContext,
    batch_event,
    get_job,
    load_event,
    load_function,
    submit_job,
    tenant_input,
)

INPUT = tenant_input("sort/big.csv")


@pytest.fixture
def later(aws, monkeypatch):
    """Move the handlers' clock forward past the sweeper's quiet threshold."""
    real = ports().clock

    def advance(seconds: int) -> None:
        monkeypatch.setattr(ports(), "clock", lambda: real() + timedelta(seconds=seconds))

    return advance


def submit(api, job_type: str = "sort-large") -> dict:
    return submit_job(api, job_type, INPUT)


def sweep() -> dict:
    return load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())


def test_queued_job_whose_dispatch_message_was_lost_is_dispatched_again(aws, api, later) -> None:
    # Given a QUEUED job whose dispatch message was lost
    job = submit(api)
    aws.dispatch_messages(delete=True)

    # When the sweeper runs after the quiet threshold
    later(11 * 60)
    report = sweep()
    aws.run_dispatcher()

    # Then the job is dispatched, once
    assert report["redispatched"] == 1
    assert get_job(api, job["job_id"])["status"] == "SUBMITTED"
    assert len(aws.batch_jobs()) == 1


def test_submitted_but_unrecorded_attempt_is_adopted_not_submitted_twice(aws, api, later) -> None:
    # Given an attempt Batch accepted but batchplane never recorded (message consumed, record lost)
    job = submit(api)
    aws.dispatch_messages(delete=True)
    aws.client("batch").submit_job(
        jobName=f"bp-{job['job_id']}-1",
        jobQueue=aws.env["SPOT_JOB_QUEUE"],
        jobDefinition="batchplane-test-sort-large",
    )
    calls = aws.record_calls("batch")

    # When the sweeper re-dispatches it
    later(11 * 60)
    sweep()
    aws.run_dispatcher()

    # Then the existing Batch job is adopted and nothing is submitted again
    assert [op for _, op, _ in calls if op == "SubmitJob"] == []
    [existing] = aws.batch_jobs()
    assert get_job(api, job["job_id"])["attempts"][0]["batch_job_id"] == existing["jobId"]


def test_missed_terminal_event_is_applied_from_describe_jobs(aws, api, later) -> None:
    # Given a job whose Batch job finished (moto finishes at once) but whose events never arrived
    job = submit(api)
    aws.run_dispatcher()
    calls = aws.record_calls("batch")

    # When the sweeper looks
    later(11 * 60)
    report = sweep()

    # Then DescribeJobs told it (after the two queues' snapshots), and the job went through the same
    # decision path as an event
    assert report["reconciled"] == 1
    assert [op for _, op, _ in calls] == ["GetJobQueueSnapshot", "GetJobQueueSnapshot", "DescribeJobs"]
    assert get_job(api, job["job_id"])["status"] == "SUCCEEDED"


def test_job_stuck_in_runnable_raises_one_alert_not_one_per_sweep(aws, api, later, monkeypatch) -> None:
    # Given a job whose attempt has been RUNNABLE for longer than sort-large's 1800 s
    job = submit(api)
    aws.run_dispatcher()
    job = get_job(api, job["job_id"])
    runnable = batch_event("runnable", job=job)
    load_function("state_change").handler(runnable, LambdaContext())
    monkeypatch.setattr(
        ports().batch,
        "describe",
        lambda ids: [BatchJobDetail.model_validate(runnable["detail"])] if ids else [],
    )
    published: list[tuple[str, str]] = []
    monkeypatch.setattr(
        ports().notify, "alert", lambda subject, job, *, event_id: published.append((subject, event_id))
    )

    # When the sweeper runs twice, 31 and 62 minutes later, and the table's stream is delivered
    later(31 * 60)
    first = sweep()
    later(62 * 60)
    second = sweep()
    aws.outbox.drain()

    # Then exactly one alert was raised, and the history says why
    assert (first["stuck"], second["stuck"]) == (1, 0)
    [(subject, event_id)] = published
    assert "stuck in RUNNABLE" in subject
    assert event_id.startswith(f"{job['job_id']}:") and event_id.endswith(":alert")
    stuck = [h for h in get_job(api, job["job_id"])["history"] if h["event"] == "stuck_runnable"]
    assert len(stuck) == 1


def test_attempt_batch_no_longer_knows_is_failed_and_decided(aws, api, later, monkeypatch) -> None:
    job = submit(api)
    aws.run_dispatcher()
    monkeypatch.setattr(ports().batch, "describe", lambda ids: [])

    later(11 * 60)
    report = sweep()

    assert report["vanished"] == 1
    stored = get_job(api, job["job_id"])
    assert stored["attempts"][0]["failure_class"] == "UNKNOWN"
    assert stored["status"] == "FAILED"  # sort-large does not retry UNKNOWN


def test_quiet_jobs_are_not_swept_before_the_threshold(aws, api) -> None:
    submit(api)
    aws.dispatch_messages(delete=True)

    assert sweep()["checked"] == 0


def test_a_retry_whose_dispatch_message_was_lost_is_dispatched_as_its_next_attempt(aws, api, later) -> None:
    # Given a job reclaimed on Spot, decided as a retry on demand, whose dispatch message was lost
    # (the state-change function died after writing the decision)
    job = submit(api)
    aws.run_dispatcher()
    job = get_job(api, job["job_id"])
    load_function("state_change").handler(batch_event("spot_interrupted", job=job), LambdaContext())
    aws.dispatch_messages(delete=True)
    calls = aws.record_calls("batch")

    # When the sweeper runs after the quiet threshold, and the dispatcher gets its message
    later(11 * 60)
    assert sweep()["redispatched"] == 1
    aws.run_dispatcher()

    # Then attempt 2 is submitted on demand, and attempt 1's Batch job is neither submitted again
    # nor terminated: the job item alone holds no finished attempt, so the sweeper reads the whole job
    [(_, _, submitted)] = [c for c in calls if c[1] == "SubmitJob"]
    assert submitted["jobName"] == f"bp-{job['job_id']}-2"
    assert submitted["jobQueue"] == aws.env["ON_DEMAND_JOB_QUEUE"]
    assert [op for _, op, _ in calls if op == "TerminateJob"] == []
    stored = get_job(api, job["job_id"])
    assert (stored["status"], [a["capacity"] for a in stored["attempts"]]) == (
        "SUBMITTED",
        ["SPOT", "ON_DEMAND"],
    )
