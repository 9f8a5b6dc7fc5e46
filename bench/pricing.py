"""Pricing rules for bench/cost.py: DynamoDB item sizes and request units (with the writes each
global secondary index adds), payload chunks, and one table of AWS list prices.

Pure: no AWS call and no import of the runtime. Items are in DynamoDB's JSON shape, as the low-level
client speaks it (`{"pk": {"S": "JOB#1"}, "version": {"N": "3"}}`). Tested by tests/unit/test_pricing.py.

The rules, from https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
(item sizes), .../read-write-operations.html (request units) and .../GSI.html#GSI.ThroughputConsiderations
(index writes):

- An item's size is the sum of its attribute names' UTF-8 lengths and its values' sizes. A string is
  its UTF-8 length; a number about 1 byte per two significant digits + 1; binary its raw length;
  a boolean or null 1 byte; a list or map 3 bytes + its elements + 1 byte per element (a map's
  element counts its key's length); a set the sum of its elements.
- A write costs one write request unit (WRU) per started 1 KB: PutItem and UpdateItem of the larger
  of the item before and after, DeleteItem of the item deleted; a conditional write that fails still
  costs the existing item's size (at least 1); an item of TransactWriteItems costs twice.
- Each index of the table: an item entering it (its index keys now present) costs one write of its
  projected size, one leaving it one write (a delete) of the old projection, an index key that
  changes a delete and a put, a change of projected non-key attributes one write of the larger
  projection, and nothing when the projection is unchanged or the item is in the index neither
  before nor after. Index writes are not doubled by transactions (DynamoDB propagates them after
  the commit; an assumption, the documentation says nothing either way).
- A read costs one read request unit (RRU) per started 4 KB: GetItem and BatchGetItem per item (an
  item not found still costs one unit), Query per 4 KB of all the items it read; half when
  eventually consistent (index queries always are); TransactGetItems twice.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
PAYLOAD_CHUNK_BYTES = 64 * 1024  # SQS, SNS and EventBridge bill each started 64 KB of payload as one


# -- item size ---------------------------------------------------------------------------------------


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def _binary(value: bytes | bytearray | str) -> int:
    if isinstance(value, str):  # base64 text, as in DynamoDB's wire JSON: the raw bytes count
        return len(base64.b64decode(value))
    return len(value)


def number_size(text: str) -> int:
    """1 byte per two significant digits (leading and trailing zeros trimmed), plus 1 byte.

    AWS calls this approximate. A negative number is counted one byte more, as the common item-size
    calculators do (not documented). Zero has no significant digit: 1 byte.
    """
    value = Decimal(text)
    digits = 0 if value.is_zero() else len(value.normalize().as_tuple().digits)
    return math.ceil(digits / 2) + 1 + (1 if value < 0 else 0)


def value_size(value: AttributeValue) -> int:
    """The size of one attribute value, without its name."""
    ((kind, data),) = value.items()
    if kind == "S":
        return _utf8(data)
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return _binary(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(s) for s in data)
    if kind == "NS":
        return sum(number_size(n) for n in data)
    if kind == "BS":
        return sum(_binary(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + value_size(element) for name, element in data.items())
    raise ValueError(f"not a DynamoDB attribute value: {value!r}")


def item_size(item: Item | None) -> int:
    """Bytes, by AWS's rules; 0 for no item."""
    if item is None:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """WRU of one non-transactional write of an item of `size` bytes: per started 1 KB, at least 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool) -> float:
    """RRU of reading `size` bytes (one item, or all the items of one Query page): per started 4 KB,
    at least 1, halved when eventually consistent."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def payload_chunks(size: int) -> int:
    """Requests billed for one SQS message, SNS publish or EventBridge entry of `size` bytes."""
    return max(1, math.ceil(size / PAYLOAD_CHUNK_BYTES))


# -- tables and indexes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """A secondary index: its keys and projection (ALL, KEYS_ONLY or INCLUDE)."""

    name: str
    hash_key: str
    range_key: str | None = None
    projection: str = "ALL"
    non_key_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Table:
    hash_key: str
    range_key: str | None = None
    indexes: tuple[Index, ...] = ()

    def key_of(self, item: Item) -> dict[str, AttributeValue]:
        names = [self.hash_key] + ([self.range_key] if self.range_key else [])
        return {name: item[name] for name in names}


def _keys(schema: list[Mapping[str, str]]) -> tuple[str, str | None]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in schema}
    return by_type["HASH"], by_type.get("RANGE")


def table_from_properties(properties: Mapping[str, Any]) -> Table:
    """The keys and indexes of an AWS::DynamoDB::Table's Properties (as in template.yaml)."""
    hash_key, range_key = _keys(properties["KeySchema"])
    indexes = []
    for spec in [*properties.get("GlobalSecondaryIndexes", []), *properties.get("LocalSecondaryIndexes", [])]:
        index_hash, index_range = _keys(spec["KeySchema"])
        projection = spec.get("Projection", {})
        indexes.append(
            Index(
                name=spec["IndexName"],
                hash_key=index_hash,
                range_key=index_range,
                projection=projection.get("ProjectionType", "KEYS_ONLY"),
                non_key_attributes=frozenset(projection.get("NonKeyAttributes", [])),
            )
        )
    return Table(hash_key=hash_key, range_key=range_key, indexes=tuple(indexes))


def projected(item: Item | None, index: Index, table: Table) -> dict[str, AttributeValue] | None:
    """What the index holds of `item`, or None when the item is not in it (an index key is absent)."""
    if item is None or index.hash_key not in item:
        return None
    if index.range_key is not None and index.range_key not in item:
        return None
    if index.projection == "ALL":
        return dict(item)
    names = {table.hash_key, table.range_key, index.hash_key, index.range_key} - {None}
    if index.projection == "INCLUDE":
        names |= index.non_key_attributes
    return {name: value for name, value in item.items() if name in names}


def _index_key(entry: Item, index: Index) -> tuple[Any, ...]:
    return (entry[index.hash_key], entry[index.range_key] if index.range_key else None)


def index_write_units(before: Item | None, after: Item | None, index: Index, table: Table) -> int:
    """WRU the index costs when a write turns `before` into `after` (None: no item)."""
    old, new = projected(before, index, table), projected(after, index, table)
    if old is None and new is None:
        return 0
    if old is None:
        assert new is not None
        return write_units(item_size(new))  # enters the index
    if new is None:
        return write_units(item_size(old))  # leaves it
    if _index_key(old, index) != _index_key(new, index):
        return write_units(item_size(old)) + write_units(item_size(new))  # delete + put
    if old == new:
        return 0
    return write_units(max(item_size(old), item_size(new)))  # projected attributes changed


@dataclass(frozen=True)
class WriteCost:
    """WRU of one item's write: on the table, and on each index by name."""

    table: int
    indexes: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.table + sum(self.indexes.values())


def write_cost(
    before: Item | None, after: Item | None, table: Table, *, transactional: bool = False
) -> WriteCost:
    """A write that succeeded: Put, Update or Delete (`after` None) of one item."""
    units = write_units(max(item_size(before), item_size(after)))
    return WriteCost(
        table=units * (2 if transactional else 1),
        indexes={index.name: index_write_units(before, after, index, table) for index in table.indexes},
    )


def failed_write_cost(existing: Item | None, *, transactional: bool = False) -> WriteCost:
    """A write whose condition failed: the existing item's size (at least 1 WRU), no index write.

    For an item of a cancelled transaction the same, doubled (an assumption: AWS documents that a
    failed conditional write consumes capacity, not what a cancelled transaction's items cost).
    """
    return WriteCost(table=write_units(item_size(existing)) * (2 if transactional else 1))


# -- prices --------------------------------------------------------------------------------------------

PRICES_AS_OF = (
    "AWS list prices, us-east-1, as published on the service pricing pages in 2025 (written from "
    "knowledge of those pages, not fetched on the day the bench runs: check before quoting)"
)


@dataclass(frozen=True)
class Price:
    usd: float
    per: int  # the number of units `usd` buys
    unit: str
    source: str
    note: str = ""

    @property
    def per_unit(self) -> float:
        return self.usd / self.per


M = 1_000_000
PRICES: dict[str, Price] = {
    "dynamodb_wru": Price(
        0.625,
        M,
        "write request unit",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "on-demand, Standard table class (after the Nov 2024 price cut)",
    ),
    "dynamodb_rru": Price(
        0.125, M, "read request unit", "https://aws.amazon.com/dynamodb/pricing/on-demand/"
    ),
    "dynamodb_storage_gb_month": Price(
        0.25,
        1,
        "GB-month stored (items + 100 B each, per index too)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "Standard table class, past the first 25 GB",
    ),
    "dynamodb_pitr_gb_month": Price(
        0.20,
        1,
        "GB-month of point-in-time recovery",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "continuous backups, on the table's size",
    ),
    "sqs_request": Price(
        0.40,
        M,
        "request (each 64 KB chunk)",
        "https://aws.amazon.com/sqs/pricing/",
        "standard queue, past the first 1M a month; billed to the queue's owner, whoever calls",
    ),
    "sns_publish": Price(
        0.50,
        M,
        "publish (each 64 KB chunk)",
        "https://aws.amazon.com/sns/pricing/",
        "standard topic; deliveries are extra (e-mail $2.00 per 100,000)",
    ),
    "eventbridge_event": Price(
        1.00,
        M,
        "custom event put (each 64 KB chunk)",
        "https://aws.amazon.com/eventbridge/pricing/",
        "AWS service events (Batch state changes) on the default bus, scheduled rules and rule delivery "
        "to Lambda are free",
    ),
    "s3_put": Price(
        0.005, 1000, "PUT, COPY, POST or LIST request", "https://aws.amazon.com/s3/pricing/", "Standard"
    ),
    "s3_get": Price(
        0.0004, 1000, "GET, HEAD or other request", "https://aws.amazon.com/s3/pricing/", "Standard"
    ),
    "apigw_rest": Price(
        3.50, M, "REST API request", "https://aws.amazon.com/api-gateway/pricing/", "first 333M a month"
    ),
    "apigw_http": Price(
        1.00,
        M,
        "HTTP API request (each 512 KB chunk)",
        "https://aws.amazon.com/api-gateway/pricing/",
        "first 300M a month",
    ),
    "lambda_request": Price(0.20, M, "invocation", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second_arm64": Price(
        0.0000133334,
        1,
        "GB-second, arm64",
        "https://aws.amazon.com/lambda/pricing/",
        "first 7.5B GB-s a month; billed per 1 ms",
    ),
    "batch_api": Price(
        0.0, 1, "API call", "https://aws.amazon.com/batch/pricing/", "no charge: you pay the compute"
    ),
    "stepfunctions_transition": Price(
        25.0,
        M,
        "state transition, Standard workflow",
        "https://aws.amazon.com/step-functions/pricing/",
        "$0.025 per 1,000",
    ),
    "cloudwatch_logs_gb": Price(
        0.50,
        1,
        "GB of logs ingested",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Standard class; Lambda's logs are vended logs, $0.50/GB for the first 10 TB",
    ),
    "xray_trace": Price(
        5.00, M, "trace recorded", "https://aws.amazon.com/xray/pricing/", "first 100,000 a month free"
    ),
}


def usd(price: str, units: float) -> float:
    return PRICES[price].per_unit * units
