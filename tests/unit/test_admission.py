"""Admission turns a request into a QUEUED job, or refuses it naming the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from batchplane.errors import InvalidRequest, RequestTooLarge, TenantNotAllowed
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import Artifact, ArtifactRole, Capacity, JobStatus
from batchplane.models.request import JobRequest
from batchplane.policy.admission import MAX_PINNED_INPUTS_BYTES, admit
from batchplane.policy.document import load_policy, parse_policy
from batchplane.policy.inputs import StackBuckets
from tests.support import POLICY_PATH

POLICY = load_policy(Path(__file__).parents[2] / "layers" / "core" / "policy.yaml")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BUCKETS = StackBuckets(ingest="batchplane-dev-ingest", artifacts="artifacts")
AREA = "s3://batchplane-dev-ingest/incoming/analytics/"  # tenant analytics's input area
INPUT = f"{AREA}notes.txt"


def request(**overrides: object) -> JobRequest:
    fields: dict[str, object] = {
        "tenant": "analytics",
        "job_type": "word-count",
        "parameters": {"input": INPUT},
    }
    fields.update(overrides)
    return JobRequest.model_validate(fields)


def run(req: JobRequest, policy=POLICY):
    return admit(policy, req, job_id="j-1", now=NOW, buckets=BUCKETS)


def test_admitted_job_is_queued_with_defaults_from_its_job_type() -> None:
    job = run(request())

    assert job.status is JobStatus.QUEUED
    assert job.parameters == {"input": INPUT, "mode": "both"}
    assert (job.vcpus, job.memory_mib) == (1, 512)
    assert job.capacity is Capacity.ON_DEMAND
    assert job.output_prefix == "s3://artifacts/outputs/analytics/j-1/"
    assert [h.event for h in job.history] == ["admitted"]


def test_spot_first_job_type_starts_on_spot() -> None:
    job = run(request(job_type="checksum-manifest"))

    assert job.capacity is Capacity.SPOT


def test_inputs_are_recorded_as_input_artifacts() -> None:
    artifact = Artifact(uri=INPUT, role=ArtifactRole.INPUT, size=10, etag="abc")

    job = run(request(inputs=[artifact]))

    assert job.artifacts == [artifact]
    assert job.inputs == [INPUT]


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"job_type": "mine-bitcoin"}, "job_type", "unknown job type"),
        ({"parameters": {"input": "http://example.com/x"}}, "parameters.input", "does not match"),
        ({"parameters": {}}, "parameters.input", "required"),
        ({"parameters": {"input": INPUT, "colour": "red"}}, "parameters.colour", "not a parameter"),
        ({"parameters": {"input": INPUT, "mode": "chars"}}, "parameters.mode", "does not match"),
        ({"vcpus": 3}, "vcpus", "outside 1..2"),
        ({"memory_mib": 4096}, "memory_mib", "outside 1..2048"),
        ({"vcpus": 0}, "vcpus", "outside 1..2"),
    ],
)
def test_request_breaking_its_job_type_is_refused_naming_the_field(
    overrides, field: str, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        run(request(**overrides))

    assert any(d.field == field and reason in d.reason for d in refused.value.details), refused.value.details


def test_request_over_the_job_types_size_limit_is_too_large() -> None:
    with pytest.raises(RequestTooLarge) as refused:
        run(request(size_bytes=5000))

    assert refused.value.details[0].field == "body"


def test_input_object_over_the_job_types_limit_is_too_large() -> None:
    huge = Artifact(uri=INPUT, role=ArtifactRole.INPUT, size=2 * 1024**3)

    with pytest.raises(RequestTooLarge) as refused:
        run(request(inputs=[huge]))

    assert refused.value.details[0].field == "inputs[0]"


def test_tenant_outside_the_allowed_list_is_refused() -> None:
    data = POLICY.model_dump(mode="json")
    data["job_types"]["word-count"]["admission"]["allowed_tenants"] = ["finance"]
    policy = parse_policy(data)

    with pytest.raises(TenantNotAllowed):
        run(request(), policy)


def test_fingerprint_ignores_order_but_not_content() -> None:
    a = request(parameters={"input": INPUT, "mode": "lines"})
    b = request(parameters={"mode": "lines", "input": INPUT})
    c = request(parameters={"input": INPUT, "mode": "words"})

    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()


def test_pinned_inputs_reach_the_first_attempts_dispatch_message() -> None:
    # Given inputs pinned to a version, to an ETag, to S3's "null" version (which a later write
    # replaces), and one not pinned at all
    inputs = [
        Artifact(uri=INPUT, role=ArtifactRole.INPUT, version_id="v-1", etag="a" * 32),
        Artifact(uri=f"{AREA}etag.txt", role=ArtifactRole.INPUT, etag="b" * 32),
        Artifact(uri=f"{AREA}null.txt", role=ArtifactRole.INPUT, version_id="null", etag="c" * 32),
        Artifact(uri=f"{AREA}as-it-is.txt", role=ArtifactRole.INPUT),
    ]

    # When the job is admitted and its first attempt dispatched
    message = DispatchMessage.next_attempt_of(run(request(inputs=inputs)))

    # Then each pinned input travels with its version, else its ETag
    assert [pin.model_dump(exclude_none=True) for pin in message.inputs] == [
        {"uri": INPUT, "version_id": "v-1"},
        {"uri": f"{AREA}etag.txt", "etag": "b" * 32},
        {"uri": f"{AREA}null.txt", "etag": "c" * 32},
    ]


def test_more_pinned_inputs_than_a_batch_jobs_environment_holds_are_refused() -> None:
    # Given a job type that takes large requests, and more pinned inputs than fit the worker's environment
    data = POLICY.model_dump(mode="json")
    data["job_types"]["word-count"]["admission"]["max_request_bytes"] = 65536
    inputs = [
        Artifact(uri=f"s3://b-1/{'k' * 200}/{n}.txt", role=ArtifactRole.INPUT, version_id=f"v{n}")
        for n in range(MAX_PINNED_INPUTS_BYTES // 200)
    ]

    # When it is submitted, Then it is refused naming the field, before anything is written
    with pytest.raises(InvalidRequest) as refused:
        run(request(inputs=inputs), parse_policy(data))
    [detail] = refused.value.details
    assert detail.field == "inputs"
    assert f"at most {MAX_PINNED_INPUTS_BYTES} fit in a Batch job's environment" in detail.reason


def test_a_pinned_version_is_part_of_a_rest_requests_fingerprint() -> None:
    unpinned = request(inputs=[Artifact(uri=INPUT, role=ArtifactRole.INPUT)])
    first = request(inputs=[Artifact(uri=INPUT, role=ArtifactRole.INPUT, version_id="v1")])
    second = request(inputs=[Artifact(uri=INPUT, role=ArtifactRole.INPUT, version_id="v2")])

    assert len({unpinned.fingerprint(), first.fingerprint(), second.fingerprint()}) == 3


def test_a_job_records_its_tenants_share_and_the_default_priority_when_it_asks_for_none() -> None:
    job = run(request())

    assert (job.share, job.priority) == ("analytics", 50)
    assert "share analytics at priority 50" in job.history[0].reason


def test_a_priority_within_the_tenants_range_is_recorded_and_carried_to_dispatch() -> None:
    job = run(request(priority=90))

    message = DispatchMessage.next_attempt_of(job)
    assert (job.priority, message.share, message.priority) == (90, "analytics", 90)


def test_a_priority_outside_the_tenants_range_is_refused_naming_priority_and_the_range() -> None:
    # Given a policy allowing tenant analytics 10..200
    data = yaml.safe_load(POLICY_PATH.read_text())
    data["scheduling"] = {"tenants": {"analytics": {"priority": {"min": 10, "max": 200, "default": 20}}}}
    policy = parse_policy(data)

    # When it asks for 201
    with pytest.raises(InvalidRequest) as refused:
        run(request(priority=201), policy)

    # Then 422 names the field and the range; another tenant's default range does not apply to it
    [detail] = refused.value.details
    assert detail.field == "priority"
    assert "outside 10..200" in detail.reason and "analytics" in detail.reason
    assert run(request(priority=150), policy).priority == 150
    marketing = {"input": "s3://batchplane-dev-ingest/incoming/marketing/notes.txt"}
    with pytest.raises(InvalidRequest):
        run(request(tenant="marketing", priority=150, parameters=marketing), policy)


def test_a_priority_changes_an_idempotency_fingerprint_and_none_keeps_the_earlier_one() -> None:
    plain = request()

    assert request(priority=None).fingerprint() == plain.fingerprint()
    assert request(priority=7).fingerprint() != plain.fingerprint()
