"""The outbox on moto: a decision and the alert and job event it owes are one write, and the jobs
table's stream delivers them through the outbox function at least once, each under a stable id,
whatever fails between the write and the publish."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchplane.adapters.clients import client
from batchplane.models.outbox import OwedKind
from batchplane.wiring import ports
from tests.support import LambdaContext, load_event, load_function


@pytest.fixture
def publish_fails(aws) -> Iterator[Any]:
    """`publish_fails("sns", "Publish", times=1)`: the handlers' own client refuses the next calls."""
    hooks: list[tuple[Any, str, Any]] = []

    def fail(service: str, operation: str, *, times: int) -> list[int]:
        refused: list[int] = []

        def refuse(**_: Any) -> None:
            if len(refused) < times:
                refused.append(1)
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, operation)

        name = f"before-call.{service}.{operation}"
        client(service).meta.events.register(name, refuse)
        hooks.append((client(service), name, refuse))
        return refused

    yield fail
    for made, name, hook in hooks:
        made.meta.events.unregister(name, hook)


def owed(job_id: str) -> dict[OwedKind, str]:
    """The ids of the events the job's latest write owes, by kind."""
    job = ports().store.get(job_id)
    assert job is not None
    return {event.kind: event.event_id for event in job.outbox}


def alert_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["MessageAttributes"]["event_id"]["Value"] for m in messages]


def running(engine) -> dict[str, Any]:
    """A sort-large job (no application error is retried) whose attempt is RUNNING."""
    job = engine.submit()
    for fixture in ("runnable", "running"):
        engine.deliver(fixture, job)
    return job


def state_change(event: dict[str, Any]) -> dict[str, Any]:
    """The state-change function alone: nothing delivers the table's stream until a test does."""
    return load_function("state_change").handler(event, LambdaContext())  # type: ignore[no-any-return]


def test_a_give_up_whose_alert_fails_to_publish_is_delivered_again_and_alerted_once(
    aws, engine, watch, publish_fails
) -> None:
    # Given a running job, and an alert topic that refuses the next publish
    job = running(engine)
    refused = publish_fails("sns", "Publish", times=1)

    # When its attempt fails for good and the stream delivers the decision's write
    assert state_change(engine.event("application_error", job))["outcome"] == "failed"
    first = aws.outbox.poll()

    # Then the write's record is reported as a batch item failure, and nothing went out
    assert first is not None and refused == [1]
    [record] = first.records
    sequence_number = record["dynamodb"]["SequenceNumber"]
    assert first.result == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    assert (watch.alerts(), watch.job_events()) == ([], [])

    # When the stream delivers the record again
    again = aws.outbox.poll()

    # Then that same record goes out: one alert and one "Job Failed", each under the decision's id
    assert again is not None and not again.failed
    assert [r["dynamodb"]["SequenceNumber"] for r in again.records] == [sequence_number]
    ids = owed(job["job_id"])
    alerts = watch.alert_messages()
    assert alert_ids(alerts) == [ids[OwedKind.ALERT]]
    assert f"event id: {ids[OwedKind.ALERT]}" in alerts[0]["Message"]
    [event] = watch.job_events()
    assert (event["detail-type"], event["detail"]["event_id"]) == ("Job Failed", ids[OwedKind.JOB_EVENT])
    assert ids[OwedKind.ALERT].startswith(f"{job['job_id']}:")
    # and the stream has nothing more to say
    assert aws.outbox.poll() is None


def test_a_decision_whose_function_dies_after_its_write_is_still_alerted_from_the_stream(
    aws, engine, watch
) -> None:
    # Given a running job, and a state-change function that dies right after it writes (a timeout,
    # a crash): its publishes, if it made any, would never happen
    job = running(engine)
    store = ports().store
    real_save = store.save

    def save_then_die(*args: Any, **kwargs: Any) -> Any:
        real_save(*args, **kwargs)
        raise RuntimeError("the function died after its write")

    store.save = save_then_die  # type: ignore[method-assign]
    calls = aws.record_calls("sns", "events")
    event = engine.event("application_error", job)

    # When its attempt fails for good
    with pytest.raises(RuntimeError, match="died after its write"):
        state_change(event)
    store.save = real_save  # type: ignore[method-assign]

    # Then the decision is written with the alert and the job event it owes, and the state-change
    # function published nothing (it never does)
    assert calls == []
    stored = store.get(job["job_id"])
    assert stored is not None and stored.status.value == "FAILED"
    assert [(e.kind, e.subject) for e in stored.outbox] == [
        (OwedKind.ALERT, f"job {job['job_id']} failed: {stored.history[-1].reason}"),
        (OwedKind.JOB_EVENT, "Job Failed"),
    ]

    # When the stream delivers the write
    aws.outbox.drain()

    # Then the outbox function published both, under the owed ids
    ids = owed(job["job_id"])
    assert [op for _, op, _ in calls] == ["Publish", "PutEvents"]
    assert alert_ids(watch.alert_messages()) == [ids[OwedKind.ALERT]]
    assert [e["detail"]["event_id"] for e in watch.job_events()] == [ids[OwedKind.JOB_EVENT]]

    # When EventBridge delivers the Batch event again (the function failed), Then it is a duplicate:
    # no second decision, nothing more owed, nothing more published
    assert state_change(event)["outcome"] == "duplicate"
    aws.outbox.drain()
    assert (watch.alert_messages(), watch.job_events()) == ([], [])


def test_a_stream_record_delivered_twice_publishes_one_id_twice_which_a_consumer_drops(
    aws, engine, watch
) -> None:
    # Given a give-up whose write the stream delivered once
    job = running(engine)
    state_change(engine.event("application_error", job))
    [delivery] = [d for d in aws.outbox.drain() if d.records]

    # When Lambda hands the same records to the function again (say it timed out after publishing)
    result = load_function("outbox").handler({"Records": delivery.records}, LambdaContext())

    # Then each event went out twice at most, both times under the same id
    assert result == {"batchItemFailures": []}
    ids = owed(job["job_id"])
    alerts, events = watch.alert_messages(), watch.job_events()
    assert alert_ids(alerts) == [ids[OwedKind.ALERT]] * 2
    assert [e["detail"]["event_id"] for e in events] == [ids[OwedKind.JOB_EVENT]] * 2

    # and a consumer that drops what it has seen by id handles each once
    def once(ids_in_order: list[str]) -> list[str]:
        seen: set[str] = set()
        return [i for i in ids_in_order if not (i in seen or seen.add(i))]

    assert once(alert_ids(alerts)) == [ids[OwedKind.ALERT]]
    assert once([e["detail"]["event_id"] for e in events]) == [ids[OwedKind.JOB_EVENT]]


def test_the_writes_after_a_decision_never_deliver_its_events_again(aws, engine, watch) -> None:
    # Given a Spot reclaim decided as a retry, whose "Job Retrying" went out
    job = running(engine)
    engine.deliver("spot_interrupted", job)
    [retrying] = watch.job_events()
    assert retrying["detail-type"] == "Job Retrying"
    calls = aws.record_calls("sns", "events")

    # When the next attempt is submitted and progresses
    aws.run_dispatcher()
    job = engine.get(job["job_id"])
    for fixture in ("runnable", "starting", "running"):
        load_function("state_change").handler(engine.event(fixture, job), LambdaContext())
    deliveries = aws.outbox.drain()

    # Then those writes clear the delivered outbox, so their records never pass the outbox's filter:
    # no invocation, nothing published again
    assert sum(len(d.records) for d in deliveries) == 0
    assert calls == []
    assert watch.job_events() == []
    assert ports().store.get(job["job_id"]).outbox == []  # type: ignore[union-attr]


def test_a_write_that_fails_every_retry_is_described_in_the_dlq_and_the_stream_moves_on(
    aws, engine, watch, publish_fails
) -> None:
    # Given a give-up whose alert can never be published
    job = running(engine)
    publish_fails("sns", "Publish", times=10_000)
    state_change(engine.event("application_error", job))

    # When the stream delivers it until Lambda's retries (MaximumRetryAttempts: 50) are spent
    deliveries = aws.outbox.drain(most=60)

    # Then it was tried 51 times, then described in OutboxDLQ (where it is, not what), and skipped
    assert len(deliveries) == 51
    assert [d.dead_lettered for d in deliveries] == [False] * 50 + [True]
    sequence_number = deliveries[0].records[0]["dynamodb"]["SequenceNumber"]
    [message] = aws.client("sqs").receive_message(QueueUrl=aws.stack.refs["OutboxDLQ"])["Messages"]
    failure = json.loads(message["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 51
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequence_number, sequence_number)
    assert info["streamArn"] == aws.outbox.stream_arn
    assert aws.outbox.poll() is None


def test_the_sample_stream_event_is_delivered_as_its_outbox_says(aws, watch) -> None:
    # Given events/dynamodb/job_outbox.json: a give-up's write, as Lambda hands it over
    event = load_event("dynamodb/job_outbox.json")

    # When the outbox function gets it
    result = load_function("outbox").handler(event, LambdaContext())

    # Then the alert and the "Job Failed" event it owes go out under its ids
    job_id = "0d9f7c1e-3b2a-4f6e-9a51-7c2b8e4d1a90"
    assert result == {"batchItemFailures": []}
    [alert] = watch.alert_messages()
    assert alert_ids([alert]) == [f"{job_id}:5:alert"]
    assert alert["Subject"].startswith(f"[batchplane] job {job_id} failed: attempt 1 failed")
    [job_event] = watch.job_events()
    assert job_event["detail-type"] == "Job Failed"
    assert (job_event["detail"]["event_id"], job_event["detail"]["status"]) == (
        f"{job_id}:5:job_event",
        "FAILED",
    )


def test_a_record_whose_publish_fails_is_logged_with_its_event_id_and_reason_then_reported(
    aws, watch, publish_fails, caplog: pytest.LogCaptureFixture
) -> None:
    # Given events/dynamodb/job_outbox.json (a give-up's write), and an alert topic that refuses it
    event = load_event("dynamodb/job_outbox.json")
    [record] = event["Records"]
    publish_fails("sns", "Publish", times=1)

    # When the outbox function gets it
    result = load_function("outbox").handler(event, LambdaContext())

    # Then the record goes back to its shard, and one WARNING names its eventID and the reason
    sequence_number = record["dynamodb"]["SequenceNumber"]
    assert result == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}
    [line] = [
        r.__dict__
        for r in caplog.records
        if r.levelno == logging.WARNING and r.__dict__.get("record_id") == record["eventID"]
    ]
    assert (line["event_source"], line["sequence_number"]) == ("aws:dynamodb", sequence_number)
    assert line["reason"] == (
        "ClientError: An error occurred (InternalError) when calling the Publish operation: injected"
    )
    assert watch.alerts() == []
