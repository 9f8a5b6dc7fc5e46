"""Array jobs' pure part: names, grouping, deferral, parts and manifest lines (policy/arrays.py)."""

from __future__ import annotations

import json

import pytest

from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import Capacity
from batchplane.models.pins import InputPin
from batchplane.policy.arrays import (
    array_name,
    chunks,
    grouped,
    manifest_line,
    manifest_text,
    members_of,
    part_of,
    parts_of,
    remaining_wait,
)
from batchplane.policy.routing import parse_array_name, parse_job_name


def message(job_id: str, tenant: str = "analytics") -> DispatchMessage:
    return DispatchMessage(
        job_id=job_id,
        attempt=1,
        tenant=tenant,
        job_type="checksum-manifest",
        parameters={"input": f"s3://in/{job_id}"},
        vcpus=2,
        memory_mib=1024,
        capacity=Capacity.SPOT,
        output_prefix=f"s3://out/{tenant}/{job_id}/",
        inputs=[InputPin(uri=f"s3://in/{job_id}", version_id="v1")],
        coalesce_since=1000.0,
    )


def test_the_array_name_is_the_same_whatever_order_the_messages_came_in() -> None:
    # Given the same members in two orders
    keys = [f"job-{n}#1" for n in range(20)]

    # Then one name, one of ours, and not a single job's name
    name = array_name(keys)
    assert name == array_name(reversed(keys))
    assert parse_array_name(name) == name
    assert name != array_name(keys[:-1])
    assert parse_array_name("bp-job-1-1") is None


def test_a_name_that_merely_starts_like_ours_is_not_one() -> None:
    assert parse_array_name("bp-array-xyz") is None
    assert parse_job_name("bp-3f2a-1") == ("3f2a", 1)


def test_members_are_indexed_by_job_id_and_a_duplicate_message_counts_once() -> None:
    # Given messages out of order, one of them twice
    members = members_of([message("c"), message("a"), message("b"), message("a")])

    # Then indexes 0..2 in job-id order
    assert [(m.index, m.message.job_id) for m in members] == [(0, "a"), (1, "b"), (2, "c")]


def test_grouping_keeps_arrival_order_within_each_key() -> None:
    groups = grouped(["a1", "b1", "a2"], lambda item: item[0])
    assert groups == {"a": ["a1", "a2"], "b": ["b1"]}


def test_chunks_cut_at_the_maximum_size() -> None:
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize(
    ("oldest", "now", "max_wait", "wait"),
    [(100.0, 100.0, 30, 30), (100.0, 110.5, 30, 20), (100.0, 130.0, 30, 0), (100.0, 500.0, 30, 0)],
)
def test_a_group_waits_the_rest_of_its_oldest_members_wait(oldest, now, max_wait, wait) -> None:
    assert remaining_wait(oldest, now, max_wait) == wait


def test_parts_hold_100_members_each_and_an_index_finds_its_part() -> None:
    keys = [f"j{n}#1" for n in range(250)]
    parts = parts_of(keys)
    assert [len(p) for p in parts] == [100, 100, 50]
    number, position = part_of(217)
    assert parts[number][position] == "j217#1"


def test_manifest_lines_carry_what_a_single_jobs_environment_holds() -> None:
    # Given two members
    members = members_of([message("b"), message("a")])

    # When their lines are written
    text = manifest_text(
        manifest_line(m.index, m.message, m.message.output_prefix + "attempt-1/") for m in members
    )

    # Then one JSON line per index, in order, with the pins as BATCHPLANE_INPUTS holds them
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["index"], line["job_id"]) for line in lines] == [(0, "a"), (1, "b")]
    assert lines[0]["inputs"] == [{"uri": "s3://in/a", "version_id": "v1"}]
    assert lines[0]["output_prefix"] == "s3://out/analytics/a/attempt-1/"
    assert lines[0]["parameters"] == {"input": "s3://in/a"}
    # and the same members always make the same bytes
    again = manifest_text(
        manifest_line(m.index, m.message, m.message.output_prefix + "attempt-1/") for m in members
    )
    assert again == text
