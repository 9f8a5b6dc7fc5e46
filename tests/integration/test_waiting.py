"""An attempt that waits in vain ends with a decision: Batch's RUNNABLE reason recorded, a
misconfiguration failed at once, Spot capacity starvation moved to on-demand exactly once, the
queues' own time limit classified, and an attempt stuck in STARTING alerted once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from batchplane.models.batch_event import BatchJobDetail
from batchplane.wiring import ports
from batchplane_tools.emulator.events import QUEUE_BLOCKED
from batchplane_tools.local.batch import put_batch_event
from tests.support import LambdaContext, load_event, load_function

MISCONFIGURED = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
NO_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"
SPOT_WAIT = 7200  # sort-large's capacity_wait.spot_fallback_after_seconds (layers/core/policy.yaml)


@pytest.fixture
def clock(aws, monkeypatch):
    """Move the handlers' clock `seconds` on from now."""
    real = ports().clock

    def advance(seconds: int) -> None:
        monkeypatch.setattr(ports(), "clock", lambda: real() + timedelta(seconds=seconds))

    return advance


def sweep() -> dict[str, Any]:
    return load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())  # type: ignore[no-any-return]


def batch_says(monkeypatch, event: dict[str, Any]) -> None:
    """DescribeJobs answers the event's detail for its job (moto's Batch runs nothing)."""
    detail = BatchJobDetail.model_validate(event["detail"])
    monkeypatch.setattr(ports().batch, "describe", lambda ids: [detail] if detail.job_id in ids else [])


def terminated(calls: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(p["jobId"], p["reason"]) for _, op, p in calls if op == "TerminateJob"]


def test_queue_blocked_by_a_misconfiguration_fails_the_job_at_once_with_its_class_and_reason(
    aws, engine, watch
) -> None:
    # Given a sort-large job whose attempt is RUNNABLE
    job = engine.submit()
    engine.deliver("runnable", job)
    calls = aws.record_calls("batch")

    # When Batch says its queue is blocked by it, for a resource requirement no CE can meet
    outcome = engine.deliver("queue_blocked_misconfiguration", job)

    # Then the job failed at once, as MISCONFIGURATION, with Batch's reason in the history and alert
    stored = engine.get(job["job_id"])
    [attempt] = stored["attempts"]
    assert (outcome["outcome"], stored["status"], attempt["failure_class"]) == (
        "failed",
        "FAILED",
        "MISCONFIGURATION",
    )
    assert MISCONFIGURED in attempt["status_reason"]
    assert (
        MISCONFIGURED in stored["history"][-1]["reason"] and "not retried" in stored["history"][-1]["reason"]
    )
    [alert] = watch.alerts()
    assert MISCONFIGURED in alert
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Failed"]
    # its Batch job was terminated (it would never run), and nothing was dispatched again
    [(batch_job_id, reason)] = terminated(calls)
    assert batch_job_id == attempt["batch_job_id"] and reason.startswith(
        f"Ended by batchplane: {MISCONFIGURED}"
    )
    assert aws.dispatch_messages() == []


def test_the_terminated_jobs_own_failed_event_and_a_repeat_of_the_blocked_event_change_nothing(
    aws, engine, watch
) -> None:
    job = engine.submit()
    engine.deliver("runnable", job)
    engine.deliver("queue_blocked_misconfiguration", job)
    watch.alerts()
    calls = aws.record_calls("batch")

    again = engine.deliver("queue_blocked_misconfiguration", job)
    cancelled = engine.deliver("time_limit_misconfiguration", job)

    assert (again["outcome"], cancelled["outcome"]) == ("stale", "duplicate")
    assert terminated(calls) == [] and watch.alerts() == []


def test_runnable_reason_is_recorded_on_the_attempt_and_a_new_reason_too(aws, engine) -> None:
    # Given a Spot attempt that just became RUNNABLE, without a reason yet
    job = engine.submit()
    assert engine.deliver("runnable", job)["outcome"] == "progressed"

    # When Batch gives a capacity reason, the same again, then another
    with_reason = engine.event("runnable_capacity", job)
    state_change = load_function("state_change").handler
    first = state_change(with_reason, LambdaContext())
    repeat = state_change(with_reason, LambdaContext())
    with_reason["detail"]["statusReason"] = (
        f"{NO_CAPACITY} - Service cannot fulfill the capacity requested for instance type [c6i.xlarge]"
    )
    changed = state_change(with_reason, LambdaContext())

    # Then each new reason is one write on the attempt; the repeat changes nothing; it keeps waiting
    assert [o["outcome"] for o in (first, repeat, changed)] == ["progressed", "stale", "progressed"]
    [attempt] = engine.get(job["job_id"])["attempts"]
    assert attempt["status"] == "RUNNABLE" and attempt["status_reason"].endswith("[c6i.xlarge]")


def test_spot_starved_past_the_job_types_limit_moves_to_on_demand_once(
    aws, engine, watch, clock, monkeypatch
) -> None:
    # Given a sort-large attempt waiting on Spot for capacity
    job = engine.submit()
    engine.deliver("runnable", job)
    blocked = engine.event("queue_blocked_capacity", job)
    batch_says(monkeypatch, blocked)
    calls = aws.record_calls("batch")

    # When the sweeper looks within the limit, then past it, and Batch's own events follow
    clock(SPOT_WAIT - 600)
    assert sweep()["ended_waits"] == 0
    clock(SPOT_WAIT + 60)
    assert sweep()["ended_waits"] == 1
    aws.outbox.drain()
    aws.run_dispatcher()
    late = [
        engine.deliver(f, job, attempt=1)["outcome"]
        for f in ("queue_blocked_capacity", "time_limit_capacity")
    ]

    # Then attempt 1 ended as CAPACITY_STARVED on Spot and attempt 2 runs on on-demand, at once
    stored = engine.get(job["job_id"])
    first, second = stored["attempts"]
    assert (first["capacity"], first["failure_class"], second["capacity"]) == (
        "SPOT",
        "CAPACITY_STARVED",
        "ON_DEMAND",
    )
    assert [h["event"] for h in stored["history"] if h["event"] in ("fell_back", "retried")] == [
        "fell_back",
        "retried",
    ]
    submitted = [p for _, op, p in calls if op == "SubmitJob"]
    assert [(p["jobName"], p["jobQueue"]) for p in submitted] == [
        (f"bp-{job['job_id']}-2", aws.env["ON_DEMAND_JOB_QUEUE"])
    ]
    [(batch_job_id, reason)] = terminated(calls)
    assert batch_job_id == first["batch_job_id"] and "not started on Spot" in reason
    assert late == ["stale", "duplicate"]  # an older attempt's RUNNABLE moves nothing; its end is known
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Retrying"]


def test_spot_starvation_under_duplicate_events_and_concurrent_sweeps_decides_once(
    aws, engine, clock, monkeypatch
) -> None:
    # Given a Spot attempt waiting longer than its limit, Batch saying why
    job = engine.submit()
    engine.deliver("runnable", job)
    blocked = engine.event("queue_blocked_capacity", job)
    batch_says(monkeypatch, blocked)
    clock(SPOT_WAIT + 60)
    state_change = load_function("state_change").handler
    outcomes: list[str] = []
    start = threading.Barrier(6, timeout=30)

    def event() -> str:
        return str(state_change(blocked, LambdaContext())["outcome"])

    sweeper_handler = load_function("sweeper").handler  # loaded once, before the threads

    def sweeper() -> str:
        return f"sweep:{sweeper_handler(load_event('schedule/sweep.json'), LambdaContext())['ended_waits']}"

    def run(handle: Callable[[], str]) -> None:
        start.wait()
        try:
            outcomes.append(handle())
        except Exception as error:
            outcomes.append(f"raised {error!r}")

    # When 3 copies of the queue-blocked event and 3 sweeps handle it at the same moment
    threads = [
        threading.Thread(target=run, args=(f,)) for f in (event, event, event, sweeper, sweeper, sweeper)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    aws.outbox.drain()

    # Then one decision and one next attempt: exactly one dispatch message, for attempt 2, on demand
    assert len(outcomes) == 6 and not [o for o in outcomes if o.startswith("raised")], outcomes
    stored = engine.get(job["job_id"])
    assert [h["event"] for h in stored["history"]].count("fell_back") == 1, stored["history"]
    [message] = aws.dispatch_messages()
    body = json.loads(message["Body"])
    assert (body["attempt"], body["capacity"]) == (2, "ON_DEMAND")


def test_queue_time_limit_cancellation_is_classified_not_unknown(aws, engine) -> None:
    # Given a Spot attempt the queue's jobStateTimeLimitActions cancelled for capacity
    job = engine.submit()
    engine.deliver("runnable", job)

    # When its FAILED event arrives
    outcome = engine.deliver("time_limit_capacity", job)
    aws.run_dispatcher()

    # Then it is CAPACITY_STARVED and falls back to on-demand like a starved wait
    stored = engine.get(job["job_id"])
    assert outcome["outcome"] == "retrying"
    assert [(a["capacity"], a["failure_class"]) for a in stored["attempts"]] == [
        ("SPOT", "CAPACITY_STARVED"),
        ("ON_DEMAND", None),
    ]


def test_attempt_stuck_in_starting_raises_one_alert(aws, engine, watch, clock, monkeypatch) -> None:
    # Given an attempt placed on an instance (STARTING) whose container never runs
    job = engine.submit()
    for fixture in ("runnable", "starting"):
        engine.deliver(fixture, job)
    batch_says(monkeypatch, engine.event("starting", job))

    # When the sweeper runs before sort-large's 600 s, then twice after
    clock(300)
    early = sweep()
    clock(11 * 60)
    first = sweep()
    clock(30 * 60)
    second = sweep()
    aws.outbox.drain()

    # Then one alert, and the history says why
    assert (early["stuck"], first["stuck"], second["stuck"]) == (0, 1, 0)
    [alert] = watch.alerts()
    assert "stuck in STARTING" in alert
    stuck = [h for h in engine.get(job["job_id"])["history"] if h["event"] == "stuck_starting"]
    assert len(stuck) == 1 and "in STARTING" in stuck[0]["reason"]


def test_a_lost_transition_out_of_starting_is_repaired_not_alerted(
    aws, engine, watch, clock, monkeypatch
) -> None:
    # Given an attempt recorded STARTING whose RUNNING event was lost
    job = engine.submit()
    for fixture in ("runnable", "starting"):
        engine.deliver(fixture, job)
    batch_says(monkeypatch, engine.event("running", job))

    # When the sweeper runs past the STARTING threshold
    clock(20 * 60)
    report = sweep()
    aws.outbox.drain()

    # Then Batch's description moved it on, and nothing was alerted
    assert report["stuck"] == 0 and report["reconciled"] == 1
    assert engine.get(job["job_id"])["status"] == "RUNNING"
    assert watch.alerts() == []


def test_the_state_change_rule_takes_queue_blocked_events_of_our_queues_only(aws) -> None:
    # Given the state-change function's rule as the local stack puts it on the bus, with a queue target
    events, sqs = aws.client("events"), aws.client("sqs")
    spec = aws.stack.template["Resources"]["StateChangeFunction"]["Properties"]["Events"]["BatchStateChange"]
    target = sqs.create_queue(QueueName="blocked-target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="state-change", EventPattern=json.dumps(aws.stack.resolve(spec["Properties"]["Pattern"]))
    )
    events.put_targets(Rule="state-change", Targets=[{"Id": "tap", "Arn": arn}])

    # When the emulator's path puts a queue-blocked event of our Spot queue, and one of another queue
    ours = load_event("batch/queue_blocked_capacity.json")["detail"]
    ours["jobQueue"] = aws.env["SPOT_JOB_QUEUE"]
    theirs = {**ours, "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/someone-else"}
    for detail in (ours, theirs):
        put_batch_event(events, detail, QUEUE_BLOCKED)

    # Then only ours reaches the function, as the detail-type and the job and queue Batch names
    received = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    [event] = [json.loads(m["Body"]) for m in received]
    assert (event["detail-type"], event["detail"]["jobQueue"]) == (QUEUE_BLOCKED, aws.env["SPOT_JOB_QUEUE"])
    assert event["resources"] == [ours["jobArn"], aws.env["SPOT_JOB_QUEUE"]]
