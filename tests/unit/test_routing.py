"""Routing picks queue, definition, resources and timeout for an attempt; names are deterministic."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from batchplane.models.job import Capacity
from batchplane.policy.document import load_policy
from batchplane.policy.routing import Queues, job_name, parse_job_name, route

POLICY = load_policy(Path(__file__).parents[2] / "layers" / "core" / "policy.yaml")
QUEUES = Queues(spot="arn:q/spot", on_demand="arn:q/on-demand")


def test_spot_capacity_routes_to_the_spot_queue_with_the_prefixed_definition() -> None:
    r = route(
        POLICY.job_types["checksum-manifest"],
        capacity=Capacity.SPOT,
        vcpus=2,
        memory_mib=1024,
        queues=QUEUES,
        definition_prefix="batchplane-dev-",
        share="analytics",
        priority=50,
    )

    assert (r.queue, r.job_definition, r.capacity) == (
        "arn:q/spot",
        "batchplane-dev-checksum-manifest",
        Capacity.SPOT,
    )
    assert r.timeout_seconds == 14400


def test_on_demand_only_job_type_never_lands_on_spot() -> None:
    r = route(
        POLICY.job_types["word-count"],
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=512,
        queues=QUEUES,
        definition_prefix="",
        share="analytics",
        priority=50,
    )

    assert (r.queue, r.capacity) == ("arn:q/on-demand", Capacity.ON_DEMAND)


def test_resources_are_capped_at_the_job_types_maximum() -> None:
    r = route(
        POLICY.job_types["sort-large"],
        capacity=Capacity.SPOT,
        vcpus=99,
        memory_mib=99999,
        queues=QUEUES,
        definition_prefix="",
        share="analytics",
        priority=50,
    )

    assert (r.vcpus, r.memory_mib) == (4, 8192)


@given(job_id=st.uuids().map(str), attempt=st.integers(min_value=1, max_value=10_000))
def test_job_name_round_trips(job_id: str, attempt: int) -> None:
    name = job_name(job_id, attempt)

    assert len(name) <= 128
    assert parse_job_name(name) == (job_id, attempt)


def test_names_batchplane_did_not_make_are_not_parsed() -> None:
    assert parse_job_name("nightly-etl") is None
    assert parse_job_name("bp-abc-") is None
