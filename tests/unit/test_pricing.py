"""bench/pricing.py: DynamoDB item sizes and request units, index writes, payload chunks, prices.

Every expected number is worked out by hand from AWS's published rules (see the module's docstring).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batchplane_tools.local.template import load_template
from bench.pricing import (
    PRICES,
    Index,
    Table,
    failed_write_cost,
    index_write_units,
    item_size,
    number_size,
    payload_chunks,
    read_units,
    table_from_properties,
    usd,
    write_cost,
    write_units,
)

ROOT = Path(__file__).resolve().parents[2]
NO_INDEX = Table(hash_key="pk", range_key="sk")


def sized(size: int, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    """An item of exactly `size` bytes (with `extra` attributes counted in): pk, sk and a filler."""
    item = {"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}, **extra}
    filler = size - item_size(item) - len("data")
    assert filler >= 0
    return {**item, "data": {"S": "x" * filler}}


# -- item size -------------------------------------------------------------------------------------


def test_a_string_counts_its_name_and_its_utf8_bytes() -> None:
    # Given a string of 3 characters that are 2 bytes each in UTF-8, under a 4-byte name
    item = {"name": {"S": "ééé"}}

    # When it is sized
    size = item_size(item)

    # Then it is 4 + 6 bytes
    assert size == 10


@pytest.mark.parametrize(
    ("number", "size"),
    [
        ("12345", 4),  # 5 significant digits: 3 bytes, + 1
        ("1500", 2),  # trailing zeros trimmed: 15, 1 byte + 1
        ("0.00120", 2),  # leading and trailing zeros trimmed: 12
        ("7", 2),
        ("0", 1),
        ("-7", 3),  # a negative number: one byte more
        ("1764345600", 5),  # an epoch second: 17643456 once trimmed, 4 bytes + 1
    ],
)
def test_a_number_is_a_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size


def test_lists_and_maps_cost_3_bytes_and_1_byte_per_element() -> None:
    # Given a map holding one 2-byte string under a 1-byte key, and a list of a number and a boolean
    item = {
        "m": {"M": {"a": {"S": "xy"}}},
        "l": {"L": [{"N": "1"}, {"BOOL": True}]},
    }

    # When they are sized
    size = item_size(item)

    # Then the map is 1 (name) + 3 + (1 + 1 + 2), the list 1 + 3 + (1 + 2) + (1 + 1)
    assert size == 8 + 9


def test_sets_are_the_sum_of_their_elements_and_null_and_binary_their_bytes() -> None:
    item = {
        "ss": {"SS": ["ab", "c"]},  # 2 + 3
        "ns": {"NS": ["10", "200"]},  # 2 + (2 + 2)
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3
        "n": {"NULL": True},  # 1 + 1
    }

    assert item_size(item) == 5 + 6 + 4 + 2


# -- writes on the table ---------------------------------------------------------------------------


def test_a_1500_byte_item_is_2_write_units() -> None:
    # Given a new item of 1,500 bytes
    item = sized(1500)
    assert item_size(item) == 1500

    # When it is put
    cost = write_cost(None, item, NO_INDEX)

    # Then it costs one unit per started KB: 2
    assert cost.table == 2
    assert cost.total == 2


def test_a_transaction_of_two_500_byte_items_is_4_write_units() -> None:
    # Given two items of 500 bytes written in one TransactWriteItems
    items = [sized(500), {**sized(500), "pk": {"S": "JOB#2"}}]

    # When each is priced as a transaction's item
    units = sum(write_cost(None, item, NO_INDEX, transactional=True).table for item in items)

    # Then each costs twice its 1 unit
    assert units == 4


def test_an_update_costs_the_larger_of_the_item_before_and_after() -> None:
    small, large = sized(900), sized(1100)

    assert write_cost(small, large, NO_INDEX).table == 2
    assert write_cost(large, small, NO_INDEX).table == 2
    assert write_cost(small, small, NO_INDEX).table == 1


def test_a_delete_costs_the_deleted_item() -> None:
    assert write_cost(sized(2500), None, NO_INDEX).table == 3


def test_a_failed_conditional_write_costs_the_existing_item_and_no_index_write() -> None:
    # Given an existing item of 2.5 KB
    existing = sized(2500, status={"S": "RUNNING"})

    # When a conditional write on it fails
    cost = failed_write_cost(existing)

    # Then the table is charged for the existing item (3 units) and no index for anything
    assert (cost.table, dict(cost.indexes)) == (3, {})
    # and a failed write on an item that does not exist still costs 1 unit; a transaction's, twice
    assert failed_write_cost(None).table == 1
    assert failed_write_cost(existing, transactional=True).table == 6


# -- writes on an index ----------------------------------------------------------------------------

BY_STATUS_ALL = Index("by_status", hash_key="gsi2pk", range_key="gsi2sk", projection="ALL")
BY_STATUS_KEYS = Index("by_status", hash_key="gsi2pk", range_key="gsi2sk", projection="KEYS_ONLY")
TABLE_ALL = Table("pk", "sk", (BY_STATUS_ALL,))
TABLE_KEYS = Table("pk", "sk", (BY_STATUS_KEYS,))


def job(status: str, size: int = 1500, **extra: dict[str, str]) -> dict[str, dict[str, str]]:
    return sized(size, gsi2pk={"S": f"TENANT#a#{status}"}, gsi2sk={"S": "2025-11-28#1"}, **extra)


def test_an_index_key_that_changes_is_a_delete_and_a_put() -> None:
    # Given a 1.5 KB job whose status is an index key (projection ALL)
    before, after = job("RUNNABLE"), job("RUNNING")

    # When its status changes
    cost = write_cost(before, after, TABLE_ALL)

    # Then the table costs 2, and the index a delete of the old entry (2) and a put of the new one (2)
    assert cost.table == 2
    assert cost.indexes == {"by_status": 4}


def test_a_keys_only_index_costs_nothing_when_no_projected_attribute_changes() -> None:
    # Given a job in a KEYS_ONLY index, and an update that changes a non-key attribute only
    before = job("RUNNING", note={"S": "a"})
    after = job("RUNNING", note={"S": "b"})

    # When it is written
    cost = write_cost(before, after, TABLE_KEYS)

    # Then the table is charged, the index is not
    assert cost.table == 2
    assert cost.indexes == {"by_status": 0}
    # whereas an ALL index rewrites its copy, at the larger projected size
    assert write_cost(before, after, TABLE_ALL).indexes == {"by_status": 2}


def test_a_keys_only_entry_is_the_table_and_index_keys_only() -> None:
    # Given a 1.5 KB job entering a KEYS_ONLY index
    after = job("QUEUED")

    # When it is put
    units = index_write_units(None, after, BY_STATUS_KEYS, TABLE_KEYS)

    # Then the entry is well under 1 KB (pk, sk, gsi2pk, gsi2sk): one unit
    assert units == 1


def test_an_item_entering_or_leaving_an_index_is_one_write() -> None:
    without = sized(1500)
    within = job("RUNNING")

    assert index_write_units(without, within, BY_STATUS_ALL, TABLE_ALL) == 2  # enters: a put of 1.5 KB
    assert index_write_units(within, without, BY_STATUS_ALL, TABLE_ALL) == 2  # leaves: a delete
    assert index_write_units(within, None, BY_STATUS_ALL, TABLE_ALL) == 2  # deleted from the table


def test_an_index_whose_keys_are_absent_costs_nothing() -> None:
    # Given an item without the sparse index's keys, before and after
    before, after = sized(1500), sized(1600)

    # Then only the table is charged
    assert write_cost(before, after, TABLE_ALL).indexes == {"by_status": 0}
    # and an item with only the hash key of a composite index key is not in the index either
    half = sized(1500, gsi2pk={"S": "TENANT#a#RUNNING"})
    assert index_write_units(None, half, BY_STATUS_ALL, TABLE_ALL) == 0


def test_an_include_index_writes_when_an_included_attribute_changes_only() -> None:
    index = Index(
        "by_status", "gsi2pk", "gsi2sk", projection="INCLUDE", non_key_attributes=frozenset({"owner"})
    )
    table = Table("pk", "sk", (index,))
    base = job("RUNNING", owner={"S": "a"}, note={"S": "a"})

    assert index_write_units(base, {**base, "owner": {"S": "b"}}, index, table) == 1
    assert index_write_units(base, {**base, "note": {"S": "b"}}, index, table) == 0


# -- reads, payloads, the template, prices ----------------------------------------------------------


def test_reads_are_per_started_4_kb_and_halved_when_eventually_consistent() -> None:
    assert read_units(4096, consistent=True) == 1
    assert read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1
    assert read_units(0, consistent=False) == 0.5  # an item not found, or an empty Query page
    assert write_units(1024) == 1
    assert write_units(1025) == 2


def test_payloads_are_billed_per_started_64_kb() -> None:
    assert [payload_chunks(n) for n in (0, 65536, 65537, 262144)] == [1, 1, 2, 4]


def test_the_jobs_table_and_its_indexes_come_from_the_template() -> None:
    # Given template.yaml's JobsTable
    properties = load_template(ROOT / "template.yaml")["Resources"]["JobsTable"]["Properties"]

    # When its schema is read
    table = table_from_properties(properties)

    # Then the keys and the two GSIs are there, as the template projects them
    assert (table.hash_key, table.range_key) == ("pk", "sk")
    by_name = {i.name: i for i in table.indexes}
    assert set(by_name) == {"by_tenant_status", "by_activity"}
    status = by_name["by_tenant_status"]
    assert (status.hash_key, status.range_key) == ("gsi2pk", "gsi2sk")
    assert (by_name["by_activity"].hash_key, by_name["by_activity"].range_key) == ("gsi3pk", "gsi3sk")
    projections = {
        i["IndexName"]: i["Projection"]["ProjectionType"] for i in properties["GlobalSecondaryIndexes"]
    }
    assert {name: index.projection for name, index in by_name.items()} == projections


def test_every_price_names_its_source_and_a_million_writes_cost_0_625() -> None:
    assert all(price.source.startswith("https://aws.amazon.com/") for price in PRICES.values())
    assert usd("dynamodb_wru", 1_000_000) == pytest.approx(0.625)
    assert usd("s3_put", 1_000_000) == pytest.approx(5.0)
    assert usd("lambda_gb_second_arm64", 1) == pytest.approx(0.0000133334)
