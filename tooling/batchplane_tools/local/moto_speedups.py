"""Takes out moto's costs that AWS does not have, for the local stack and the benchmarks.

moto is built for tests that make a few dozen objects. A local stack running for hours, or a burst
of 10,000 files, runs into five of its habits, each of which grows with the data or with traffic:

- It records each model instance it creates (every DynamoDB item, every copy of a table, every SQS
  message) in a class-level list that only its debug dashboard reads, so nothing is ever freed.
- TransactWriteItems deep-copies every table it names, whole, once per action, for its rollback:
  each transaction costs time in proportion to the table, and the job-creating transactions grow
  quadratic. (A table with a stream: its records too.) A journal of the items it names rolls back
  instead, and stream records are numbered from a counter, so a rolled-back transaction never hands
  a sequence number out twice.
- SendMessage and ReceiveMessage compute all of a queue's attributes, recounting its messages, for
  each message (to read one attribute): quadratic in a queue's backlog.
- EventBridge builds a JSONPath parser (a yacc table) for each of its default input paths, for every
  event and target.
- DynamoDB Streams keeps every shard iterator it ever handed out (one per GetShardIterator and per
  GetRecords call); AWS expires them after 15 minutes, and so does this.
- A Query of the table itself sorts every item of the table to pick its one partition's: each read
  of a job costs time in proportion to the table.
- GetRecords runs each stream record (both images of an item, attribute by attribute) through the
  generic response serializer, ~30 ms a record; the records are in the wire's shape already. So do
  the item operations (GetItem, Query, UpdateItem...) with their items.

None changes what the APIs answer; each patch removes a cost and keeps the behaviour.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import types
from contextvars import ContextVar
from typing import Any

# The services whose models churn with traffic. S3 keeps its tracking: its reset closes the
# temporary files of the keys it finds there.
CHURNING_SERVICES = ("dynamodb", "sqs", "sns", "events")

# Per base-table Query: the hash key (DynamoType) whose partition it reads.
_partition: ContextVar[Any] = ContextVar("partition", default=None)


class _Untracked(list[Any]):
    """A list that takes nothing: moto's `instances_tracked.append(instance)` becomes a no-op."""

    def append(self, item: Any) -> None:
        return None


def stop_instance_tracking(services: tuple[str, ...] = CHURNING_SERVICES) -> None:
    """Call after moto has started, and again after a moto reset, which puts fresh lists back."""
    from moto.core.model_instances import model_data

    for service in services:
        importlib.import_module(f"moto.{service}.models")
        for model in model_data[service].values():
            model.instances_tracked = _Untracked()  # type: ignore[attr-defined]


def _partitions_named(
    tables: dict[str, Any], transact_items: list[dict[str, Any]], key_type: Any
) -> dict[str, dict[Any, set[Any] | None]]:
    """Per table, the partition keys a transaction's actions name, each with the range keys named in
    it (None: the whole partition, for a key that could not be read)."""
    touched: dict[str, dict[Any, set[Any] | None]] = {}
    for entry in transact_items:
        for action in entry.values():
            table = tables.get(action.get("TableName"))
            if table is None:
                continue
            key = action.get("Item") or action.get("Key") or {}
            if key.get(table.hash_key_attr) is None:
                continue
            named = touched.setdefault(table.name, {})
            try:
                partition = key_type(key[table.hash_key_attr])
                ranges = named.setdefault(partition, set())  # hashing reads the value
            except Exception:  # malformed: moto reports it as it always does
                continue
            try:
                if ranges is not None and table.range_key_attr:
                    ranges.add(key_type(key[table.range_key_attr]))
            except Exception:  # no range key read: copy the partition whole
                named[partition] = None
    return touched


_ABSENT = object()  # in a journal: the item (or partition) was not there before the transaction


class _Journal:
    """What a rollback puts back: per named partition, its named items (or the whole partition, or the
    item of a hash-only table) deep-copied as they are, or _ABSENT; per streamed table, its stream's
    length (records are only ever added)."""

    def __init__(self, tables: dict[str, Any], touched: dict[str, dict[Any, set[Any] | None]]) -> None:
        self.items: list[tuple[Any, Any, bool | None, Any]] = []
        self.streams: list[tuple[Any, int]] = []
        for name, partitions in touched.items():
            table = tables[name]
            for key, ranges in partitions.items():
                # (`items` is a defaultdict: reading a missing key would make an empty partition)
                if ranges is None or not table.range_key_attr:
                    saved = copy.deepcopy(table.items[key]) if key in table.items else _ABSENT
                    self.items.append((table, key, None, saved))
                    continue
                partition = table.items.get(key, {})
                named = {r: copy.deepcopy(partition[r]) if r in partition else _ABSENT for r in ranges}
                self.items.append((table, key, key in table.items, named))
            if table.stream_shard is not None:
                self.streams.append((table.stream_shard, len(table.stream_shard.items)))

    def roll_back(self) -> None:
        for shard, length in self.streams:
            del shard.items[length:]
        for table, key, existed, saved in self.items:
            if existed is None:  # the whole partition, or a hash-only table's item
                if saved is _ABSENT:
                    table.items.pop(key, None)
                else:
                    table.items[key] = saved
                continue
            partition = table.items.setdefault(key, {})
            for range_key, item in saved.items():
                if item is _ABSENT:
                    partition.pop(range_key, None)
                else:
                    partition[range_key] = item
            if not existed and not partition:
                table.items.pop(key, None)


def roll_transactions_back_from_a_journal() -> None:
    """TransactWriteItems rolls back from a journal of the items it names, deep-copied before it
    runs, instead of moto's copy of every table it names. Copying even the partition map of a table
    costs time in proportion to the table (100,000 jobs: ~500,000 partitions, copied once per action
    of every transaction). Idempotent."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "_batchplane", False):
        return

    def deepcopy(value: Any, memo: Any = None) -> Any:
        # moto's rollback copy of a table is the live table itself: the journal restores it.
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    # moto's models module calls copy.deepcopy for the rollback copy (and for items, passed through).
    models.copy = types.SimpleNamespace(**{**vars(copy), "deepcopy": deepcopy})  # type: ignore[attr-defined,assignment]
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        journal = _Journal(self.tables, _partitions_named(self.tables, transact_items, DynamoType))
        try:
            return original(self, transact_items)
        except BaseException:
            journal.roll_back()
            raise

    transact_write_items._batchplane = True  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def number_stream_records_once() -> None:
    """A stream record's sequence number comes from a counter kept on its shard, not from the length
    of its record list, which a rollback shortens (above); a read finds its start by sequence number.
    The numbers stay increasing, as in DynamoDB."""
    import bisect

    from moto.dynamodb.models.table import StreamShard

    if getattr(StreamShard.add, "_batchplane", False):
        return
    original_add = StreamShard.add

    def add(self: StreamShard, old: Any, new: Any) -> None:
        counter: list[int] = self.__dict__.setdefault(
            "_batchplane_next", [self.starting_sequence_number + len(self.items)]
        )
        before = len(self.items)
        original_add(self, old, new)
        if len(self.items) == before + 1:  # (moto empties the list when a Lambda mapping took it)
            self.items[-1].record["dynamodb"]["SequenceNumber"] = str(counter[0])
        counter[0] += 1

    def get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
        first = bisect.bisect_left(
            self.items, start, key=lambda r: int(r.record["dynamodb"]["SequenceNumber"])
        )
        return [record.to_json() for record in self.items[first : first + quantity]]

    add._batchplane = True  # type: ignore[attr-defined]
    StreamShard.add = add  # type: ignore[method-assign]
    StreamShard.get = get  # type: ignore[method-assign]


# AWS's lifetime of a shard iterator.
ITERATOR_LIFETIME_SECONDS = 15 * 60


def expire_shard_iterators() -> None:
    """A shard iterator is forgotten 15 minutes after it was made, as AWS expires it."""
    import time

    from moto.dynamodbstreams.models import ShardIterator

    if getattr(ShardIterator.__init__, "_batchplane", False):
        return
    original_init = ShardIterator.__init__

    def init(self: ShardIterator, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._batchplane_made = time.monotonic()  # type: ignore[attr-defined]
        backend = self.streams_backend
        if self._batchplane_made - getattr(backend, "_batchplane_pruned", 0.0) > 60:  # type: ignore[attr-defined]
            backend._batchplane_pruned = self._batchplane_made  # type: ignore[attr-defined]
            expired = self._batchplane_made - ITERATOR_LIFETIME_SECONDS  # type: ignore[attr-defined]
            for arn, iterator in list(backend.shard_iterators.items()):
                if getattr(iterator, "_batchplane_made", expired) < expired:
                    backend.shard_iterators.pop(arn, None)

    init._batchplane = True  # type: ignore[attr-defined]
    ShardIterator.__init__ = init  # type: ignore[method-assign]


def read_queue_attributes_lazily() -> None:
    """A queue's attributes are computed as they are read, not all at once.

    moto's `Queue.attributes` builds every attribute, recounting the queue's messages three times,
    and SendMessage and ReceiveMessage read it for one attribute each (ContentBasedDeduplication, the
    retention period). GetQueueAttributes still reads every attribute, the counts included.
    """
    from collections.abc import Iterator, Mapping

    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.models import Queue

    if getattr(Queue.attributes.fget, "_batchplane", False):  # type: ignore[attr-defined]
        return

    class Attributes(Mapping[str, Any]):
        """The same names and values as moto's dict, each computed when it is read."""

        def __init__(self, queue: Queue) -> None:
            self._queue = queue
            names = list(queue.BASE_ATTRIBUTES)
            if queue.fifo_queue:
                names += queue.FIFO_ATTRIBUTES
            if queue.kms_master_key_id:  # type: ignore[attr-defined]
                names += queue.KMS_ATTRIBUTES
            self._names = list(dict.fromkeys(names))

        def __getitem__(self, name: str) -> Any:
            if name not in self._names:
                raise KeyError(name)
            queue = self._queue
            if name == "Policy" and queue.policy:
                return queue.policy
            if name == "RedrivePolicy" and queue.redrive_policy:
                return json.dumps(queue.redrive_policy)
            value = getattr(queue, camelcase_to_underscores(name))
            return str(value).lower() if isinstance(value, bool) else value

        def __iter__(self) -> Iterator[str]:
            return iter(self._names)

        def __len__(self) -> int:
            return len(self._names)

    def attributes(self: Queue) -> Attributes:
        return Attributes(self)

    attributes._batchplane = True  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]


def reuse_jsonpath_parsers() -> None:
    """One parsed JSONPath expression per path string (they hold no state of the event they find in)."""
    import functools

    import jsonpath_ng.ext

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):  # type: ignore[attr-defined]
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]


def query_one_partition() -> None:
    """A Query without an index reads the items of its partition alone, in range key order, as
    moto's own filter of every item would leave them. Idempotent."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "one_partition", False):
        return
    query, all_items = Table.query, Table.all_items

    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # index_name: the 8th parameter, passed by position or by name
        if hash_key is None or (args[6] if len(args) > 6 else kwargs.get("index_name")):
            return query(self, hash_key, *args, **kwargs)
        token = _partition.set(hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _partition.reset(token)

    def partition_items(self: Any) -> Any:
        hash_key = _partition.get()
        if hash_key is None or not self.range_key_attr:
            return all_items(self)
        return sorted(self.items.get(hash_key, {}).values(), key=lambda item: item.range_key)

    partition_query.one_partition = True  # type: ignore[attr-defined]
    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = partition_items  # type: ignore[method-assign]


def dump_stream_records() -> None:
    """GetRecords answers with the records as moto holds them, dumped as JSON (the creation time as
    epoch seconds, as the JSON protocol sends timestamps), not through the generic serializer."""
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    if getattr(DynamoDBStreamsHandler.get_records, "dumped", False):
        return

    def get_records(self: Any) -> str:
        limit = self._get_param("Limit") or 1000
        result = self.backend.get_records(self._get_param("ShardIterator"), limit)
        return json.dumps(result, default=lambda value: value.timestamp())

    get_records.dumped = True  # type: ignore[attr-defined]
    DynamoDBStreamsHandler.get_records = get_records  # type: ignore[method-assign,assignment]


# DynamoDB's item operations: their results are items and counts in the wire's shape already.
ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _wire(value: Any) -> str:
    """A binary attribute value, as the JSON protocol sends it (bytes are all moto leaves unsent)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_item_results() -> None:
    """An item operation answers with its result dumped as JSON (binary values base64), not through
    the generic serializer, which walks each attribute value against the service model: about a fifth
    of the time of a test that makes 1,000 jobs. The status and headers are still the serializer's
    (of an empty result). botocore reads only the members it knows and skips nulls, as it does from
    the serializer's body. Idempotent."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult.execute_result, "dumped", False):
        return
    serialize = DynamoResult.execute_result
    empty = ActionResult({})

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name not in ITEM_OPERATIONS:
            return serialize(self, context)
        status, headers, _ = serialize(empty, context)
        return status, headers, json.dumps(self.result, default=_wire)

    execute_result.dumped = True  # type: ignore[attr-defined]
    execute_result.serialized = serialize  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def keep_moto_fast() -> None:
    """All of the above."""
    roll_transactions_back_from_a_journal()
    number_stream_records_once()
    expire_shard_iterators()
    read_queue_attributes_lazily()
    reuse_jsonpath_parsers()
    stop_instance_tracking()
    query_one_partition()
    dump_stream_records()
    dump_item_results()
