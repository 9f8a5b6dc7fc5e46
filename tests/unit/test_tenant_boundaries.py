"""A tenant's data boundary as the policy states it: where its inputs may come from, whose a dropped
file is, and every spelling of another tenant's object that must not get through."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchplane.errors import InvalidRequest, PolicyError, TenantNotAllowed
from batchplane.models.job import Artifact, ArtifactRole
from batchplane.models.request import JobRequest
from batchplane.policy.admission import admit
from batchplane.policy.document import load_policy, parse_policy
from batchplane.policy.file_drop import first_match
from batchplane.policy.inputs import StackBuckets, value_problem

EXAMPLE = Path(__file__).parents[2] / "layers" / "core" / "policy.yaml"
POLICY = load_policy(EXAMPLE)
BUCKETS = StackBuckets(ingest="ingest", artifacts="artifacts")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB = "0d9f7c1e-3b2a-4f6e-9a51-7c2b8e4d1a90"


def example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def with_inputs(**inputs: Any) -> Any:
    data = example()
    data["inputs"] = inputs
    return parse_policy(data)


def any_text_input() -> Any:
    """The example policy with sort-large's `input` taking any text: the boundary, not the operator's
    pattern, is what refuses another tenant's object."""
    data = example()
    data["job_types"]["sort-large"]["parameters"]["input"]["pattern"] = ".*"
    return parse_policy(data)


def submit(tenant: str, policy: Any = POLICY, **fields: Any) -> Any:
    request = JobRequest.model_validate({"tenant": tenant, "job_type": "sort-large", **fields})
    return admit(policy, request, job_id="j-1", now=NOW, buckets=BUCKETS)


# ---- where a tenant's inputs may come from ----------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "s3://ingest/incoming/analytics/sort/big.csv",  # its own prefix of the ingest bucket
        "s3://ingest/incoming/analytics/red flowerÉ c++ (draft)=1.txt",  # any key S3 reads literally
        f"s3://artifacts/outputs/analytics/{JOB}/attempt-1/counts.json",  # its own outputs, chained
    ],
)
def test_a_tenant_may_have_its_own_objects_read(uri: str) -> None:
    job = submit("analytics", parameters={"input": uri}, inputs=[{"uri": uri, "role": "input"}])

    assert job.parameters["input"] == uri
    assert job.inputs == [uri]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        # Given tenant finance's data, named as it is
        ("s3://ingest/incoming/finance/ledger.csv", "another tenant's data"),
        (f"s3://artifacts/outputs/finance/{JOB}/attempt-1/counts.json", "another tenant's data"),
        # a tenant whose name starts with this one's, and this one's name in another case
        ("s3://ingest/incoming/analytics-eu/ledger.csv", "another tenant's data"),
        ("s3://ingest/incoming/Analytics/ledger.csv", "another tenant's data"),
        # a bucket whose name starts with the ingest bucket's, or is an alias of a bucket
        ("s3://ingest-evil/incoming/analytics/x.csv", "outside the input sources"),
        ("s3://ingest2/incoming/analytics/x.csv", "outside the input sources"),
        ("s3://ingest-ap-123456789012-s3alias/incoming/analytics/x", "alias or reserved name"),
        ("s3://Ingest/incoming/analytics/x.csv", "not a valid S3 bucket name"),
        # climbing out of the own prefix, or a key that reads differently decoded or normalised
        ("s3://ingest/incoming/analytics/../finance/ledger.csv", "'..'"),
        ("s3://ingest/incoming/analytics/./x.csv", "'.'"),
        ("s3://ingest/incoming//analytics/x.csv", "empty path segment"),
        ("s3://ingest//incoming/analytics/x.csv", "empty path segment"),
        ("s3://ingest/incoming/analytics%2F..%2Ffinance/ledger.csv", "percent-encoded sequence %2F"),
        ("s3://ingest/incoming/analytics/%2e%2e/x.csv", "percent-encoded sequence %2e"),
        ("s3://ingest/incoming/analytics/x\x00.csv", "control character"),
        # the stack's buckets outside the tenants' areas
        ("s3://ingest/manual/notes.txt", "outside the input sources"),
        ("s3://artifacts/outputs/x.json", "not among the outputs of tenant analytics"),
        ("s3://artifacts/inputs/notes.txt", "not among the outputs of tenant analytics"),
        # not one s3:// URI
        ("S3://ingest/incoming/finance/ledger.csv", "lowercase scheme"),
        (" s3://ingest/incoming/finance/ledger.csv", "lowercase scheme"),
        ("s3://ingest/incoming/analytics/x s3://ingest/incoming/finance/y", "another URI"),
        ("s3://ingest", "names no object key"),
    ],
)
def test_anything_but_a_tenants_own_object_is_refused_naming_the_field(uri: str, reason: str) -> None:
    # When tenant analytics names it as an input parameter, and as a declared input
    for fields, field in (
        ({"parameters": {"input": uri}}, "parameters.input"),
        (
            {"parameters": {"input": "s3://ingest/incoming/analytics/ok.csv"}, "inputs": [{"uri": uri}]},
            "inputs[0].uri",
        ),
    ):
        inputs = fields.get("inputs", [])
        with pytest.raises(InvalidRequest) as refused:
            submit(
                "analytics",
                any_text_input(),
                parameters=fields["parameters"],
                inputs=[Artifact(uri=i["uri"], role=ArtifactRole.INPUT) for i in inputs],
            )

        # Then it is refused, naming the field and why
        assert [d.field for d in refused.value.details] == [field]
        assert reason in refused.value.details[0].reason, refused.value.details


@pytest.mark.parametrize(
    "value",
    [
        "--input=s3://ingest/incoming/finance/ledger.csv",
        "s3a://ingest/incoming/finance/ledger.csv",
        "arn:aws:s3:::ingest/incoming/finance/ledger.csv",
        "arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/incoming/finance/x",
    ],
)
def test_a_parameter_smuggling_an_s3_location_is_refused(value: str) -> None:
    # Given a job type whose second parameter takes any text
    data = example()
    data["job_types"]["sort-large"]["parameters"]["unique"] = {"pattern": ".*"}
    policy = parse_policy(data)

    # When its value names another tenant's object some other way than as the whole value
    with pytest.raises(InvalidRequest) as refused:
        submit(
            "analytics",
            policy,
            parameters={"input": "s3://ingest/incoming/analytics/ok.csv", "unique": value},
        )

    # Then it is refused naming that parameter
    [detail] = refused.value.details
    assert detail.field == "parameters.unique"
    assert "names an S3 location" in detail.reason


def test_plain_parameter_values_are_not_locations() -> None:
    assert value_problem("both", "analytics", POLICY.inputs, BUCKETS) is None
    assert value_problem("64", "analytics", POLICY.inputs, BUCKETS) is None


def test_the_output_prefix_is_the_callers_own_whatever_the_request_says() -> None:
    job = submit("analytics", parameters={"input": "s3://ingest/incoming/analytics/x.csv"})

    assert job.output_prefix == "s3://artifacts/outputs/analytics/j-1/"


def test_a_tenant_name_that_is_not_one_key_segment_is_refused() -> None:
    with pytest.raises(TenantNotAllowed) as refused:
        submit("a/../finance", parameters={"input": "s3://ingest/incoming/a/x.csv"})

    assert refused.value.details[0].field == "tenant"


def test_a_bucket_a_tenant_owns_is_its_input_source_and_no_one_elses() -> None:
    # Given tenant analytics's own bucket in the policy
    policy = with_inputs(tenants={"analytics": [{"bucket": "analytics-raw", "prefix": ""}]})

    # Then analytics may read from it, and finance may not
    assert submit("analytics", policy, parameters={"input": "s3://analytics-raw/2025/x.csv"})
    with pytest.raises(InvalidRequest) as refused:
        submit("finance", policy, parameters={"input": "s3://analytics-raw/2025/x.csv"})
    assert "outside the input sources of tenant finance" in refused.value.details[0].reason


def test_a_tenants_own_source_naming_the_stacks_bucket_still_never_reaches_another_tenant() -> None:
    # Given a policy that names the ingest and artifact buckets by name for tenant analytics
    policy = with_inputs(
        sources=[{"bucket": "@ingest", "prefix": "incoming/{tenant}/"}],
        tenants={"analytics": [{"bucket": "ingest", "prefix": ""}, {"bucket": "artifacts", "prefix": ""}]},
    )

    # Then other tenants' prefixes and outputs are still refused
    for uri, reason in (
        ("s3://ingest/incoming/finance/x.csv", "another tenant's data"),
        (f"s3://artifacts/outputs/finance/{JOB}/a.json", "not among the outputs of tenant analytics"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            submit("analytics", policy, parameters={"input": uri})
        assert reason in refused.value.details[0].reason
    assert submit("analytics", policy, parameters={"input": "s3://ingest/manual/x.csv"})


# ---- the policy document's `inputs` ------------------------------------------------------------------


def test_a_policy_without_inputs_gets_the_safe_default() -> None:
    data = example()
    del data["inputs"]

    policy = parse_policy(data)

    assert [str(s) for s in policy.inputs.sources] == [
        "s3://@ingest/incoming/{tenant}/",
        "s3://@artifacts/outputs/{tenant}/",
    ]
    assert policy.inputs.tenants == {}


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"sources": [{"bucket": "@ingest", "prefix": "shared/"}]}, "holds no {tenant}"),
        ({"sources": [{"bucket": "@ingest", "prefix": "incoming/{tenant}-x/"}]}, "whole key segment"),
        ({"sources": [{"bucket": "@ingest", "prefix": "in/{tenant}/{tenant}/"}]}, "once"),
        ({"sources": [{"bucket": "@ingest", "prefix": "incoming/{tenant}"}]}, "must end in '/'"),
        ({"sources": [{"bucket": "@ingest", "prefix": "incoming/../{tenant}/"}]}, "'..'"),
        ({"sources": [{"bucket": "@ingest", "prefix": "{user}/{tenant}/"}]}, "only {tenant}"),
        ({"sources": [{"bucket": "@artifacts", "prefix": "{tenant}/"}]}, "outputs/{tenant}/ only"),
        ({"sources": [{"bucket": "My_Bucket", "prefix": "{tenant}/"}]}, "not a valid S3 bucket name"),
        (
            {
                "sources": [
                    {"bucket": "@ingest", "prefix": "incoming/{tenant}/"},
                    {"bucket": "@ingest", "prefix": "incoming/shared/{tenant}/"},
                ]
            },
            "overlap",
        ),
        (
            {"tenants": {"analytics": [{"bucket": "@ingest", "prefix": "incoming/finance/"}]}},
            "finance's area",
        ),
        ({"tenants": {"analytics": [{"bucket": "@ingest", "prefix": "incoming/"}]}}, "covers every tenant's"),
        ({"tenants": {"analytics": [{"bucket": "@ingest", "prefix": ""}]}}, "covers every tenant's"),
        ({"tenants": {"analytics": [{"bucket": "@artifacts", "prefix": "outputs/"}]}}, "not analytics's"),
        ({"tenants": {"analytics": [{"bucket": "raw", "prefix": "x/{tenant}/"}]}}, "without {tenant}"),
        ({"tenants": {"a/b": [{"bucket": "raw", "prefix": ""}]}}, "not a tenant name"),
        (
            {
                "tenants": {
                    "analytics": [{"bucket": "raw", "prefix": "data/"}],
                    "finance": [{"bucket": "raw", "prefix": "data/finance/"}],
                }
            },
            "overlap",
        ),
    ],
)
def test_inputs_that_would_let_a_tenant_read_anothers_data_fail_to_load(inputs: Any, reason: str) -> None:
    with pytest.raises(PolicyError) as failure:
        with_inputs(**inputs)

    assert any(d.field.startswith("inputs") and reason in d.reason for d in failure.value.details), (
        failure.value.details
    )


# ---- file drop: whose a dropped file is ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/analytics/word-count/notes.txt", ("word-count", "analytics")),
        ("incoming/finance/sort/big.csv", ("sort-large", "finance")),
        ("incoming/analytics/word-count/deeper/notes.txt", ("word-count", "analytics")),
        ("incoming/word-count/notes.txt", None),  # tenant word-count's prefix, where no rule is
        ("incoming/analytics/finance/word-count/notes.txt", None),
        ("incoming/analytics/word-count/notes.csv", None),
    ],
)
def test_a_dropped_files_tenant_is_the_one_whose_prefix_it_is_under(key: str, expected: Any) -> None:
    match = first_match(POLICY, key)

    assert ((match.rule.job_type, match.tenant) if match else None) == expected


@pytest.mark.parametrize(
    ("rule", "field", "reason"),
    [
        (  # a rule that would make files under tenant word-count's prefix tenant file-drop's jobs
            {"prefix": "incoming/word-count/", "tenant": "file-drop", "job_type": "word-count"},
            "file_drop.0.prefix",
            "not inside an input source of tenant file-drop",
        ),
        (
            {"prefix": "incoming/", "tenant": "file-drop", "job_type": "word-count"},
            "file_drop.0.prefix",
            "not inside an input source",
        ),
        (
            {"prefix": "uploads/{tenant}/", "job_type": "word-count"},
            "file_drop.0.prefix",
            "not inside an input source of each tenant",
        ),
        (
            {"prefix": "incoming/{tenant}/x/", "tenant": "analytics", "job_type": "word-count"},
            "file_drop.0",
            "either in the prefix",
        ),
        (
            {"prefix": "incoming/analytics/x/", "job_type": "word-count"},
            "file_drop.0",
            "either in the prefix",
        ),
    ],
)
def test_a_file_drop_rule_crossing_a_tenant_boundary_fails_to_load(
    rule: Any, field: str, reason: str
) -> None:
    data = example()
    data["file_drop"] = [rule]

    with pytest.raises(PolicyError) as failure:
        parse_policy(data)

    assert any(d.field.startswith(field) and reason in d.reason for d in failure.value.details), (
        failure.value.details
    )


def test_a_file_drop_rule_may_name_a_tenant_for_its_own_prefix() -> None:
    data = example()
    data["file_drop"] = [
        {"prefix": "incoming/file-drop/word-count/", "tenant": "file-drop", "job_type": "word-count"}
    ]

    match = first_match(parse_policy(data), "incoming/file-drop/word-count/notes.txt")

    assert match is not None
    assert match.tenant == "file-drop"
