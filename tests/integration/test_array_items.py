"""adapters/array_items.py on moto: an index's member read from its part (kept once read), holes, the
parent's id recorded once and only on an array batchplane has a meta item for, the hold on its
submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from batchplane.adapters.array_items import DynamoArrayBook
from batchplane.service.ports import ArrayMember

ARRAY = "bp-array-5c0e8f1a2b3d4c6e7f809a1b"
RETENTION = timedelta(days=90)


def book_of(aws: Any) -> tuple[DynamoArrayBook, list[str]]:
    """The adapter on the stack's table, and the DynamoDB operations it makes."""
    client = aws.client("dynamodb")
    operations: list[str] = []
    client.meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: operations.append(model.name)
    )
    return DynamoArrayBook(aws.env["JOBS_TABLE_NAME"], client, retention=RETENTION), operations


def put(aws: Any, sk: str, **attributes: Any) -> None:
    aws.client("dynamodb").put_item(
        TableName=aws.env["JOBS_TABLE_NAME"],
        Item={"pk": {"S": f"ARRAY#{ARRAY}"}, "sk": {"S": sk}, **attributes},
    )


def test_members_are_read_from_their_part_once_and_holes_are_none(aws) -> None:
    # Given an array of 102 members in two parts, index 1 a hole
    members = [f"job-{k}#1" for k in range(102)]
    members[1] = ""
    put(aws, "PART#00000", members={"L": [{"S": m} for m in members[:100]]})
    put(aws, "PART#00001", members={"L": [{"S": m} for m in members[100:]]})
    book, operations = book_of(aws)

    # When indexes are looked up, some twice
    found = [book.member(ARRAY, k) for k in (0, 1, 99, 101, 0, 102, 250)]

    # Then each is its part's member, a hole or an index past the end none; each part read once
    assert found == [
        ArrayMember(ARRAY, 0, "job-0", 1),
        None,
        ArrayMember(ARRAY, 99, "job-99", 1),
        ArrayMember(ARRAY, 101, "job-101", 1),
        ArrayMember(ARRAY, 0, "job-0", 1),
        None,
        None,
    ]
    assert operations == ["GetItem", "GetItem", "GetItem"]  # part 0, part 1, and part 2 (absent)


def test_the_parent_is_recorded_once_and_only_for_an_array_with_a_meta_item(aws) -> None:
    # Given an array's meta item without a parent
    put(aws, "ARRAY", tenant={"S": "analytics"}, size={"N": "3"})
    book, _ = book_of(aws)
    assert book.parent_of(ARRAY) is None

    # When two parents are recorded in turn, and one for an array with no meta item
    first, second = book.record_parent(ARRAY, "parent-1"), book.record_parent(ARRAY, "parent-2")
    stray = book.record_parent("bp-array-" + "0" * 24, "parent-3")

    # Then the first stays; the unknown array gets no item
    assert (first, second, stray) == (True, False, False)
    assert (
        DynamoArrayBook(aws.env["JOBS_TABLE_NAME"], aws.client("dynamodb"), retention=RETENTION).parent_of(
            ARRAY
        )
        == "parent-1"
    )
    keys = [(i["pk"]["S"], i["sk"]["S"]) for i in aws.table_items() if i["pk"]["S"].startswith("ARRAY#")]
    assert keys == [(f"ARRAY#{ARRAY}", "ARRAY")]


def test_an_arrays_submission_is_held_by_one_invocation_until_its_hold_ends_or_a_parent_is_recorded(
    aws,
) -> None:
    # Given an array's meta item without a parent
    put(aws, "ARRAY", tenant={"S": "analytics"}, size={"N": "3"})
    book, _ = book_of(aws)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    hold = timedelta(minutes=15)

    # When invocations ask for its submission: one, another meanwhile, another once the hold is over
    first = book.hold_submission(ARRAY, now, now + hold)
    meanwhile = book.hold_submission(ARRAY, now + timedelta(minutes=5), now + timedelta(minutes=5) + hold)
    after = book.hold_submission(ARRAY, now + hold, now + 2 * hold)
    # and once its parent is recorded, and for an array with no meta item
    book.record_parent(ARRAY, "parent-1")
    recorded = book.hold_submission(ARRAY, now + 3 * hold, now + 4 * hold)
    stray = book.hold_submission("bp-array-" + "0" * 24, now, now + hold)

    # Then only the first and the one after the hold take it; no item is made
    assert (first, meanwhile, after, recorded, stray) == (True, False, True, False, False)
    keys = [(i["pk"]["S"], i["sk"]["S"]) for i in aws.table_items() if i["pk"]["S"].startswith("ARRAY#")]
    assert keys == [(f"ARRAY#{ARRAY}", "ARRAY")]
