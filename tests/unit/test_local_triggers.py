"""The local stack's triggers, as Lambda runs them: SQS batches with partial failures, EventBridge
deliveries retried and then dead-lettered, schedules at the template's rate, and DynamoDB stream
mappings wired from the template (their behaviour: test_local_streams.py)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from batchplane_tools.local.invoker import Invoker, Workers
from batchplane_tools.local.streams import StreamMapping
from batchplane_tools.local.template import Stack, load_template
from batchplane_tools.local.triggers import EVENT_DELIVERIES, Triggers, schedule_interval
from tests.support import TEMPLATE


class FakeSqs:
    """One batch of messages, then `stop` set: each poll loop runs once."""

    def __init__(self, messages: list[dict[str, Any]], stop: threading.Event) -> None:
        self.messages = messages
        self.stop = stop
        self.deleted: list[str] = []
        self.sent: list[tuple[str, str]] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.stop.set()
        return {"Messages": self.messages}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    def send_message(self, QueueUrl: str, MessageBody: str) -> None:
        self.sent.append((QueueUrl, MessageBody))


def message(n: int, receives: int = 1) -> dict[str, Any]:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": json.dumps({"n": n}),
        "Attributes": {"ApproximateReceiveCount": str(receives)},
    }


def triggers_over(sqs_messages: list[dict[str, Any]]) -> tuple[Triggers, FakeSqs]:
    stop = threading.Event()
    sqs = FakeSqs(sqs_messages, stop)
    return Triggers(sqs=sqs, events=None, invoke=Invoker(), stop=stop, sweep_interval=None), sqs


def one_worker(sqs: FakeSqs) -> Workers:
    """As a function runs by default: one invocation at a time."""
    return Workers(1, sqs.stop, "test")


def test_sqs_batch_deletes_all_but_the_reported_failures() -> None:
    triggers, sqs = triggers_over([message(n) for n in range(12)])
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"batchItemFailures": [{"itemIdentifier": "m3"}]}

    triggers._poll_sqs(handler, "url", "arn:aws:sqs:us-east-1:123456789012:q", 10, one_worker(sqs))

    [event] = seen
    assert [r["messageId"] for r in event["Records"]] == [f"m{n}" for n in range(12)]
    assert event["Records"][0]["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert sqs.deleted == [f"r{n}" for n in range(12) if n != 3]


def test_sqs_batch_is_kept_for_redelivery_when_the_handler_raises() -> None:
    triggers, sqs = triggers_over([message(1)])

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    triggers._poll_sqs(handler, "url", "arn", 10, one_worker(sqs))

    assert sqs.deleted == []


@pytest.mark.parametrize(
    ("receives", "deleted", "dead_lettered"),
    [(1, False, False), (EVENT_DELIVERIES - 1, False, False), (EVENT_DELIVERIES, True, True)],
)
def test_failed_rule_delivery_is_retried_then_dead_lettered(
    receives: int, deleted: bool, dead_lettered: bool
) -> None:
    triggers, sqs = triggers_over([message(1, receives)])

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    triggers._poll_rule(handler, "tap", "dlq", one_worker(sqs))

    assert (sqs.deleted == ["r1"]) is deleted
    assert (sqs.sent == [("dlq", json.dumps({"n": 1}))]) is dead_lettered


def test_delivered_rule_event_is_the_bodys_event() -> None:
    triggers, sqs = triggers_over([message(1)])
    seen: list[dict[str, Any]] = []

    triggers._poll_rule(lambda event, context: seen.append(event), "tap", None, one_worker(sqs))

    assert (seen, sqs.deleted) == ([{"n": 1}], ["r1"])


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("rate(5 minutes)", 300.0),
        ("rate(1 minute)", 60.0),
        ("rate(2 hours)", 7200.0),
        ("rate(30 seconds)", 30.0),
        ("cron(0 * * * ? *)", 300.0),
    ],
)
def test_schedule_interval_follows_the_rate(schedule: str, seconds: float) -> None:
    assert schedule_interval(schedule) == seconds


def test_a_dynamodb_event_is_wired_as_the_template_says_with_its_failures_sent_to_its_destination() -> None:
    # Given the template's outbox function, its table's stream and its DLQ as provisioning names them
    stack = Stack(name="local", template=load_template(TEMPLATE))
    stream = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/2025-11-28T16:00:00.000"
    stack.attributes[("JobsTable", "StreamArn")] = stream
    stack.attributes[("OutboxDLQ", "Arn")] = "arn:aws:sqs:us-east-1:123456789012:local-outboxdlq"
    [spec] = [
        event["Properties"]
        for event in stack.template["Resources"]["OutboxFunction"]["Properties"]["Events"].values()
        if event["Type"] == "DynamoDB"
    ]
    stop = threading.Event()
    sqs = FakeSqs([], stop)
    sqs.get_queue_url = lambda QueueName: {"QueueUrl": f"url/{QueueName}"}  # type: ignore[attr-defined]
    triggers = Triggers(
        sqs=sqs, events=None, invoke=Invoker(), stop=stop, sweep_interval=None, streams=object()
    )

    # When its mapping is made
    mapping = triggers.stream_mapping(stack, "OutboxFunction", spec, lambda event, context: None)

    # Then it reads the table's stream, and a batch that fails every retry is described in the DLQ
    assert isinstance(mapping, StreamMapping) and mapping.stream_arn == stream
    assert mapping._on_failure is not None
    mapping._on_failure({"DDBStreamBatchInfo": {"streamArn": stream}})
    assert sqs.sent == [("url/local-outboxdlq", json.dumps({"DDBStreamBatchInfo": {"streamArn": stream}}))]


def test_a_dynamodb_event_needs_a_streams_client() -> None:
    triggers, _ = triggers_over([])
    stack = Stack(name="local", template=load_template(TEMPLATE))
    with pytest.raises(RuntimeError, match="dynamodbstreams client"):
        triggers.stream_mapping(stack, "OutboxFunction", {}, lambda event, context: None)


class QueuedSqs:
    """A queue holding `messages`: each receive takes up to MaxNumberOfMessages of them; the batch's
    handler sets `stop`, so each poll loop delivers one batch."""

    def __init__(self, messages: list[dict[str, Any]], stop: threading.Event) -> None:
        self.waiting = list(messages)
        self.stop = stop
        self.receives: list[int] = []  # MaxNumberOfMessages of each receive
        self.deleted: list[str] = []
        self.released: list[str] = []

    def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        self.receives.append(MaxNumberOfMessages)
        taken, self.waiting = self.waiting[:MaxNumberOfMessages], self.waiting[MaxNumberOfMessages:]
        return {"Messages": taken}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        assert all(e["VisibilityTimeout"] == 0 for e in Entries)
        self.released += [e["ReceiptHandle"] for e in Entries]


def one_batch(messages: list[dict[str, Any]], batch_size: int, window: float) -> tuple[list[str], QueuedSqs]:
    """The first batch a mapping of `batch_size` and `window` delivers from a queue of `messages`."""
    stop = threading.Event()
    sqs = QueuedSqs(messages, stop)
    triggers = Triggers(sqs=sqs, events=None, invoke=Invoker(), stop=stop, sweep_interval=None)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["messageId"] for r in event["Records"])
        stop.set()
        return {"batchItemFailures": []}

    triggers._poll_sqs(handler, "url", "arn", batch_size, Workers(1, stop, "test"), window=window)
    return seen, sqs


def test_a_batch_is_gathered_in_receives_of_ten_up_to_its_batch_size() -> None:
    # Given 30 messages waiting and a mapping of BatchSize 25 with a window
    seen, sqs = one_batch([message(n) for n in range(30)], batch_size=25, window=30.0)

    # Then one invocation gets the first 25, received 10, 10, then the 5 still wanted
    assert seen == [f"m{n}" for n in range(25)]
    assert sqs.receives == [10, 10, 5]
    assert sqs.deleted == [f"r{n}" for n in range(25)]


def test_a_batch_short_of_its_size_is_delivered_once_its_window_has_passed() -> None:
    # Given 3 messages and a mapping of BatchSize 1000 with a short window
    seen, sqs = one_batch([message(n) for n in range(3)], batch_size=1000, window=0.05)

    # Then the window kept it receiving after the queue ran dry, and then the 3 were delivered
    assert seen == ["m0", "m1", "m2"]
    assert len(sqs.receives) > 1


def test_without_a_window_one_receive_is_the_batch() -> None:
    seen, sqs = one_batch([message(n) for n in range(30)], batch_size=100, window=0.0)

    assert seen == [f"m{n}" for n in range(10)]
    assert sqs.receives == [10]


def test_a_batch_stops_at_six_megabytes_and_gives_back_what_it_received_beyond() -> None:
    # Given 10 messages of 1 MiB each and a mapping of BatchSize 100
    big = [{**message(n), "Body": "x" * 1024 * 1024} for n in range(10)]
    seen, sqs = one_batch(big, batch_size=100, window=30.0)

    # Then the batch holds the 6 that fit in 6 MB, and the other 4 are visible again at once
    assert seen == [f"m{n}" for n in range(6)]
    assert sqs.released == [f"r{n}" for n in range(6, 10)]
    assert sqs.deleted == [f"r{n}" for n in range(6)]
