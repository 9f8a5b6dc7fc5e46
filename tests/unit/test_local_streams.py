"""The local stack's DynamoDB stream event source mapping, as Lambda runs it: the template's filter
criteria, batches, partial batch failures retried from the first failed record, bisection on an
error, and retries that end in the on-failure destination."""

from __future__ import annotations

from typing import Any

import pytest

from batchplane_tools.local.streams import StreamMapping, filter_patterns, matches, passes
from batchplane_tools.local.template import load_template
from tests.support import TEMPLATE

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/2025-11-28T16:00:00.000"


@pytest.fixture(scope="module")
def outbox_event() -> dict[str, Any]:
    """The outbox function's DynamoDB event, as template.yaml declares it."""
    events = load_template(TEMPLATE)["Resources"]["OutboxFunction"]["Properties"]["Events"]
    [spec] = [e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]
    return spec


def owing(*event_ids: str) -> dict[str, Any]:
    return {
        "L": [
            {"M": {"event_id": {"S": i}, "kind": {"S": "alert"}, "subject": {"S": "job j failed"}}}
            for i in event_ids
        ]
    }


OWES = "owes"


def record(n: int, *, sk: str = "JOB", outbox: Any = OWES, event: str = "MODIFY") -> dict[str, Any]:
    """A stream record as GetRecords returns it (sequence number 100 + n), of a job item's write
    that owes an alert unless told otherwise (`outbox=None`: an item without one)."""
    if outbox == OWES:
        outbox = owing(f"j{n}:1:alert")
    change: dict[str, Any] = {
        "Keys": {"pk": {"S": f"JOB#j{n}"}, "sk": {"S": sk}},
        "SequenceNumber": str(100 + n),
        "SizeBytes": 10,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if event != "REMOVE":
        change["NewImage"] = {**change["Keys"], **({"outbox": outbox} if outbox is not None else {})}
    return {"eventID": f"e{n}", "eventName": event, "eventVersion": "1.1", "dynamodb": change}


def test_the_templates_filter_passes_only_job_writes_that_owe_something(outbox_event) -> None:
    patterns = filter_patterns(outbox_event)

    def lambda_record(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "eventSource": "aws:dynamodb", "eventSourceARN": STREAM}

    assert passes(patterns, lambda_record(record(1, outbox=owing("j:3:alert", "j:3:job_event"))))
    assert not passes(patterns, lambda_record(record(2, outbox={"L": []})))  # owes nothing
    assert not passes(patterns, lambda_record(record(3, outbox=None)))  # written before the outbox
    assert not passes(patterns, lambda_record(record(4, sk="INFLIGHT#word-count", outbox=owing("x"))))
    assert not passes(patterns, lambda_record(record(5, event="REMOVE")))


@pytest.mark.parametrize(
    ("pattern", "value", "matched"),
    [
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),  # a list matches when one element does
        ({"a": {"b": [{"exists": True}]}}, {"a": [{"c": 1}, {"b": 2}]}, True),
        ({"a": [{"exists": True}]}, {"a": {"b": 1}}, False),  # exists tests leaves only
        ({"a": [{"exists": False}]}, {"b": 1}, True),
        ({"a": [{"exists": False}]}, {"a": 1}, False),
        ({"a": [{"prefix": "JOB#"}]}, {"a": "JOB#1"}, True),
        ({"a": [{"anything-but": ["x"]}]}, {"a": "y"}, True),
        ({"a": [{"anything-but": ["x"]}]}, {"a": "x"}, False),
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),  # every key must match
    ],
)
def test_filter_patterns_match_as_lambdas_event_filtering_does(
    pattern: dict[str, Any], value: dict[str, Any], matched: bool
) -> None:
    assert matches(pattern, value) is matched


def test_an_operator_the_local_stack_cannot_evaluate_is_refused() -> None:
    with pytest.raises(NotImplementedError, match="numeric"):
        matches({"a": [{"numeric": [">", 1]}]}, {"a": 2})


class FakeStreams:
    """One shard over a list of records, with iterators that are positions in it."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(
        self, StreamArn: str, ShardId: str, ShardIteratorType: str, SequenceNumber: str | None = None
    ) -> dict[str, Any]:
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in self.records]
        start = {
            "TRIM_HORIZON": 0,
            "LATEST": len(numbers),
            "AT_SEQUENCE_NUMBER": sum(1 for n in numbers if n < int(SequenceNumber or 0)),
            "AFTER_SEQUENCE_NUMBER": sum(1 for n in numbers if n <= int(SequenceNumber or 0)),
        }[ShardIteratorType]
        return {"ShardIterator": str(start)}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        start = int(ShardIterator)
        page = self.records[start : start + Limit]
        return {"Records": page, "NextShardIterator": str(start + len(page))}


class Function:
    """A handler that reports the records it is told to fail, or raises."""

    def __init__(self, fail: frozenset[str] | set[str] = frozenset(), raises: bool = False) -> None:
        self.fail, self.raises = set(fail), raises
        self.batches: list[list[str]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        numbers = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.batches.append(numbers)
        if self.raises:
            raise RuntimeError("boom")
        return {"batchItemFailures": [{"itemIdentifier": n} for n in numbers if n in self.fail]}


def mapping(
    records: list[dict[str, Any]], function: Function, outbox_event: dict[str, Any], **overrides: Any
) -> tuple[StreamMapping, list[dict[str, Any]]]:
    failures: list[dict[str, Any]] = []
    spec = {**outbox_event, **overrides}
    made = StreamMapping.of_event(
        spec, streams=FakeStreams(records), stream_arn=STREAM, invoke=function, on_failure=failures.append
    )
    return made, failures


def test_a_reported_failure_is_delivered_again_from_that_record_on(outbox_event) -> None:
    # Given three records, the second of which the function fails once
    function = Function(fail={"102"})
    stream, _ = mapping([record(n) for n in (1, 2, 3)], function, outbox_event)

    # When the stream is polled, the failure cleared, and polled again
    first = stream.poll()
    function.fail.clear()
    second = stream.poll()

    # Then the first batch was all three, the retry starts at the failed record, and then all is done
    assert first is not None and first.failed == ["102", "103"]
    assert function.batches == [["101", "102", "103"], ["102", "103"]]
    assert second is not None and not second.failed
    assert stream.poll() is None


def test_records_the_filter_drops_never_reach_the_function(outbox_event) -> None:
    # Given a write that owes nothing, one that owes an alert, and an item without an outbox
    function = Function()
    stream, _ = mapping(
        [record(1, outbox={"L": []}), record(2), record(3, outbox=None)], function, outbox_event
    )

    # When the stream is drained, Then only the write that owes something was delivered
    assert [d.records[0]["dynamodb"]["SequenceNumber"] for d in stream.drain()] == ["102"]
    assert function.batches == [["102"]]
    assert stream.poll() is None


def test_an_error_splits_the_batch_without_spending_a_retry(outbox_event) -> None:
    # Given a function that raises on every batch of four records
    function = Function(raises=True)
    stream, failures = mapping(
        [record(n) for n in (1, 2, 3, 4)], function, outbox_event, MaximumRetryAttempts=1
    )

    # When it is polled until the single first record has failed past its one retry
    for _ in range(4):
        stream.poll()

    # Then the batch was halved twice (no retry spent), retried once, then described and skipped
    assert function.batches == [["101", "102", "103", "104"], ["101", "102"], ["101"], ["101"]]
    [failure] = failures
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == "101"
    function.raises = False
    assert [d.records[0]["dynamodb"]["SequenceNumber"] for d in stream.drain()] == ["102"]


def test_retries_spent_the_failing_records_are_described_to_the_destination_and_skipped(outbox_event) -> None:
    # Given a record the function always fails, after one that succeeds, and MaximumRetryAttempts 2
    function = Function(fail={"102"})
    stream, failures = mapping([record(1), record(2)], function, outbox_event, MaximumRetryAttempts=2)

    # When the stream is polled until it moves on
    deliveries = stream.drain()

    # Then the record was delivered three times (once and twice again), then described, not sent
    assert function.batches == [["101", "102"], ["102"], ["102"]]
    assert [d.dead_lettered for d in deliveries] == [False, False, True]
    [failure] = failures
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("102", "102", 1)
    assert (info["shardId"], info["streamArn"]) == ("shard-1", STREAM)
    assert stream.poll() is None
