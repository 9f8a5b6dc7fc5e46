"""A DynamoDB stream event source mapping, run as Lambda runs it, over the dynamodbstreams API.

Lambda reads each shard in order from its starting position, drops the records its FilterCriteria do
not match, and invokes the function with a batch of the rest. With ReportBatchItemFailures, a batch
whose function reports failed records is delivered again from the first of them (what came before is
done); a batch whose function raises is delivered again whole, split in half first when
BisectBatchOnFunctionError is on (a split is no retry). After MaximumRetryAttempts retries the failing
records are skipped and their place in the stream is described to the on-failure destination.
Not emulated: MaximumRecordAgeInSeconds, ParallelizationFactor, tumbling windows, shard splits.

The local stack polls a mapping on a thread (triggers.py); the tests call `poll` themselves.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchplane_tools.local.template import REGION

# How often the stream's shards are listed again (Lambda, too, finds new shards as it goes).
SHARDS_REFRESH_SECONDS = 60.0


def filter_patterns(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An event's FilterCriteria (template form) as patterns; a record matching any one passes."""
    criteria = spec.get("FilterCriteria") or {}
    return [json.loads(f["Pattern"]) for f in criteria.get("Filters", [])]


def passes(patterns: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Lambda's event filtering: no patterns pass everything, otherwise any one pattern must match."""
    return not patterns or any(matches(pattern, record) for pattern in patterns)


def matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """Does `value` match an event pattern? Every key of the pattern must: a nested object by a
    nested pattern, a leaf by one of its conditions. Arrays in the value are searched: a path through
    a list matches when one element does (the way `{"L": {"S": [{"exists": true}]}}` reaches into a
    DynamoDB list). Operators: exact values, exists, prefix, anything-but; others raise."""
    for key, rule in pattern.items():
        found = _values(value, key)
        if isinstance(rule, Mapping):
            if not any(isinstance(child, Mapping) and matches(rule, child) for child in found):
                return False
        elif not _leaf_matches(rule, [v for v in found if not isinstance(v, Mapping)]):
            return False
    return True


def _values(value: Any, key: str) -> list[Any]:
    """What `key` names in `value`, arrays flattened on both sides of it."""
    nodes = value if isinstance(value, list) else [value]
    found: list[Any] = []
    for node in nodes:
        if isinstance(node, Mapping) and key in node:
            child = node[key]
            found.extend(child if isinstance(child, list) else [child])
    return found


def _leaf_matches(conditions: Any, leaves: list[Any]) -> bool:
    if not isinstance(conditions, list):
        raise ValueError(f"a filter pattern's leaf must be a list of conditions, not {conditions!r}")
    return any(_condition_holds(condition, leaves) for condition in conditions)


def _condition_holds(condition: Any, leaves: list[Any]) -> bool:
    if not isinstance(condition, Mapping):
        return condition in leaves
    ((operator, operand),) = condition.items()
    if operator == "exists":
        return bool(leaves) is bool(operand)
    if operator == "prefix":
        return any(isinstance(leaf, str) and leaf.startswith(operand) for leaf in leaves)
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        return bool(leaves) and all(leaf not in excluded for leaf in leaves)
    raise NotImplementedError(f"the local stack does not evaluate the {operator!r} filter operator")


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function: the same keys, the creation time as
    epoch seconds, and the stream's ARN."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": record.get("eventSource", "aws:dynamodb"),
        "awsRegion": record.get("awsRegion", REGION),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


@dataclass(frozen=True)
class Delivery:
    """One invocation of the function with a batch of stream records."""

    records: list[dict[str, Any]]
    result: Any = None
    failed: list[str] = field(default_factory=list)  # sequence numbers that are delivered again
    error: BaseException | None = None
    dead_lettered: bool = False  # retries exhausted: skipped, and described to the destination


@dataclass
class _Shard:
    shard_id: str
    # Where the next read starts: a GetShardIterator type and its sequence number. A fresh iterator is
    # asked for at every poll, never a NextShardIterator kept from the last: moto swaps in a copy of a
    # table when it rolls a transaction back, and an old iterator would read the orphaned stream.
    position: tuple[str, str | None] = ("TRIM_HORIZON", None)
    retries: int = 0
    limit: int | None = None  # a bisected batch's size


class StreamMapping:
    """One DynamoDB event source mapping: `poll` reads what follows its checkpoint, invokes, and moves
    the checkpoint as Lambda would."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        *,
        batch_size: int = 100,
        patterns: Sequence[Mapping[str, Any]] = (),
        report_item_failures: bool = False,
        bisect: bool = False,
        max_retries: int = -1,
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        function_arn: str = "",
        starting_position: str = "TRIM_HORIZON",
    ) -> None:
        self._streams = streams
        self.stream_arn = stream_arn
        self._invoke = invoke
        self._batch_size = batch_size
        self._patterns = list(patterns)
        self._report_item_failures = report_item_failures
        self._bisect = bisect
        self._max_retries = max_retries
        self._on_failure = on_failure
        self._function_arn = function_arn
        self._starting_position = starting_position
        self._shards: dict[str, _Shard] = {}
        self._listed_at: float | None = None

    @classmethod
    def of_event(
        cls,
        spec: Mapping[str, Any],
        *,
        streams: Any,
        stream_arn: str,
        invoke: Callable[[dict[str, Any]], Any],
        on_failure: Callable[[dict[str, Any]], None] | None = None,
        function_arn: str = "",
    ) -> StreamMapping:
        """The mapping a function's DynamoDB event (its resolved Properties in template.yaml) makes."""
        return cls(
            streams,
            stream_arn,
            invoke,
            batch_size=int(spec.get("BatchSize", 100)),
            patterns=filter_patterns(spec),
            report_item_failures="ReportBatchItemFailures" in (spec.get("FunctionResponseTypes") or []),
            bisect=bool(spec.get("BisectBatchOnFunctionError", False)),
            max_retries=int(spec.get("MaximumRetryAttempts", -1)),
            on_failure=on_failure,
            function_arn=function_arn,
            starting_position=str(spec.get("StartingPosition", "TRIM_HORIZON")),
        )

    def poll(self) -> Delivery | None:
        """One batch from the first shard that has one; None when every shard is read to its end."""
        for shard in self._current_shards():
            delivery = self._poll_shard(shard)
            if delivery is not None:
                return delivery
        return None

    def drain(self, most: int = 100) -> list[Delivery]:
        """Poll until the stream has nothing new (at most `most` batches); the deliveries made."""
        deliveries: list[Delivery] = []
        while len(deliveries) < most and (delivery := self.poll()) is not None:
            deliveries.append(delivery)
        return deliveries

    def _current_shards(self) -> Iterable[_Shard]:
        now = time.monotonic()
        if self._listed_at is None or now - self._listed_at > SHARDS_REFRESH_SECONDS:
            self._listed_at = now
            description = self._streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            for listed in description.get("Shards", []):
                if listed["ShardId"] not in self._shards:
                    shard = self._shards[listed["ShardId"]] = _Shard(listed["ShardId"])
                    if self._starting_position == "LATEST":
                        shard.position = self._latest(shard)
        return list(self._shards.values())

    def _iterator(self, shard: _Shard, kind: str, sequence_number: str | None = None) -> str:
        request: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard.shard_id,
            "ShardIteratorType": kind,
        }
        if sequence_number is not None:
            request["SequenceNumber"] = sequence_number
        return str(self._streams.get_shard_iterator(**request)["ShardIterator"])

    def _latest(self, shard: _Shard) -> tuple[str, str | None]:
        """LATEST: after the last record the shard holds now."""
        iterator, last = self._iterator(shard, "TRIM_HORIZON"), None
        while records := (page := self._streams.get_records(ShardIterator=iterator)).get("Records", []):
            last, iterator = records[-1]["dynamodb"]["SequenceNumber"], page["NextShardIterator"]
        return ("AFTER_SEQUENCE_NUMBER", last) if last else ("TRIM_HORIZON", None)

    def _poll_shard(self, shard: _Shard) -> Delivery | None:
        iterator = self._iterator(shard, *shard.position)
        # Read on to the first records that pass the filter; the ones it drops are done with.
        while True:
            page = self._streams.get_records(ShardIterator=iterator, Limit=shard.limit or self._batch_size)
            records = [lambda_record(r, self.stream_arn) for r in page.get("Records", [])]
            if not records:
                return None
            last = records[-1]["dynamodb"]["SequenceNumber"]
            batch = [r for r in records if passes(self._patterns, r)]
            if batch:
                return self._deliver(shard, batch, last=last)
            shard.position = ("AFTER_SEQUENCE_NUMBER", last)
            iterator = page["NextShardIterator"]

    def _deliver(self, shard: _Shard, batch: list[dict[str, Any]], *, last: str) -> Delivery:
        event = {"Records": batch}
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        try:
            result = self._invoke(event)
        except Exception as error:
            if self._bisect and len(batch) > 1:  # a split is no retry
                shard.limit = len(batch) // 2
                shard.position = ("AT_SEQUENCE_NUMBER", sequence[0])
                return Delivery(batch, failed=sequence, error=error)
            return self._failed(shard, batch, 0, Delivery(batch, failed=sequence, error=error))
        failed = self._reported(result, sequence)
        if failed is None:
            shard.position, shard.retries, shard.limit = ("AFTER_SEQUENCE_NUMBER", last), 0, None
            return Delivery(batch, result=result)
        first = min(sequence.index(s) for s in failed) if failed else 0
        return self._failed(shard, batch, first, Delivery(batch, result=result, failed=sequence[first:]))

    def _reported(self, result: Any, sequence: list[str]) -> list[str] | None:
        """The sequence numbers the function reported failed; None for none, [] for "all of them"
        (an identifier that names no record of the batch fails the batch, as in Lambda)."""
        if not self._report_item_failures or not isinstance(result, Mapping):
            return None
        identifiers = [f.get("itemIdentifier") for f in result.get("batchItemFailures") or []]
        if not identifiers:
            return None
        if any(i not in sequence for i in identifiers):
            return []
        return [str(i) for i in identifiers]

    def _failed(self, shard: _Shard, batch: list[dict[str, Any]], first: int, delivery: Delivery) -> Delivery:
        """Deliver again from `batch[first]`, or, retries spent, skip the batch and describe it."""
        if self._max_retries < 0 or shard.retries < self._max_retries:
            shard.retries += 1
            shard.position = ("AT_SEQUENCE_NUMBER", batch[first]["dynamodb"]["SequenceNumber"])
            return delivery
        if self._on_failure is not None:
            self._on_failure(self._failure_record(shard, batch[first:], invokes=shard.retries + 1))
        shard.position = ("AFTER_SEQUENCE_NUMBER", batch[-1]["dynamodb"]["SequenceNumber"])
        shard.retries, shard.limit = 0, None
        return Delivery(
            delivery.records, delivery.result, delivery.failed, delivery.error, dead_lettered=True
        )

    def _failure_record(
        self, shard: _Shard, records: list[dict[str, Any]], *, invokes: int
    ) -> dict[str, Any]:
        """What Lambda sends an on-failure destination for a stream batch: where it is, not what."""

        def arrival(record: dict[str, Any]) -> str:
            seconds = float(record["dynamodb"].get("ApproximateCreationDateTime") or 0)
            return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": invokes,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(records[0]),
                "approximateArrivalOfLastRecord": arrival(records[-1]),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
