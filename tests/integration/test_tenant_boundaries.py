"""Tenant data boundaries on moto, through the handlers: tenant finance can neither have tenant
analytics's inputs or outputs processed (over REST, by a file drop) nor list them (lineage, a job's
artifacts), and a refused request writes nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from batchplane.models.job import JobStatus
from batchplane.models.policy import PolicyDocument
from batchplane.wiring import ports
from tests.conftest import AwsStack
from tests.support import (
    LambdaContext,
    api_event,
    load_event,
    load_function,
    s3_notification,
    sqs_event,
    submit_job,
    tenant_input,
)

THEIRS = tenant_input("sort/ledger.csv", tenant="analytics")


def post(api: Any, tenant: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, reply, _ = api(
        api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"}, tenant=tenant)
    )
    return status, reply


def get(api: Any, path: str, tenant: str, *, resource: str | None = None, **query: str) -> tuple[int, Any]:
    status, reply, _ = api(api_event("GET", path, tenant=tenant, resource=resource, query=query or None))
    return status, reply


@pytest.fixture
def analytics_job(aws: AwsStack, api: Any) -> dict[str, Any]:
    """Tenant analytics's sort-large job, which read THEIRS and whose attempt 1 wrote sorted.txt."""
    job = submit_job(api, "sort-large", THEIRS, inputs=[{"uri": THEIRS}])
    key = f"outputs/analytics/{job['job_id']}/attempt-1/sorted.txt"
    aws.client("s3").put_object(Bucket=aws.env["ARTIFACT_BUCKET"], Key=key, Body=b"a\nb\n")
    event = load_event("s3/eventbridge_output_created.json")
    event["detail"]["bucket"]["name"] = aws.env["ARTIFACT_BUCKET"]
    event["detail"]["object"]["key"] = key
    assert load_function("artifacts").handler(event, LambdaContext())["recorded"] == 1
    job["output"] = f"s3://{aws.env['ARTIFACT_BUCKET']}/{key}"
    aws.dispatch_messages(delete=True)
    return job


def drop(aws: AwsStack, key: str) -> dict[str, Any]:
    """An object-created notification for `key` in the ingest bucket, through the ingest queue's event."""
    notification = s3_notification(bucket=aws.env["INGEST_BUCKET"], key=quote_plus(key, safe="/"))
    event = sqs_event([("m0", json.dumps(notification), 1)])
    return load_function("file_drop").handler(event, LambdaContext())  # type: ignore[no-any-return]


def job_items(aws: AwsStack) -> list[dict[str, Any]]:
    return [i for i in aws.table_items() if i["pk"]["S"].startswith("JOB#") and i["sk"]["S"] == "JOB"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job_type": "sort-large", "parameters": {"input": "{output}"}}, "parameters.input"),
        ({"job_type": "sort-large", "parameters": {"input": THEIRS}}, "parameters.input"),
        (
            {
                "job_type": "sort-large",
                "parameters": {"input": tenant_input("mine.csv", tenant="finance")},
                "inputs": [{"uri": "{output}"}],
            },
            "inputs[0].uri",
        ),
    ],
)
def test_another_tenants_input_or_output_named_over_rest_is_refused_and_writes_nothing(
    aws: AwsStack, api: Any, analytics_job: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    # Given tenant analytics's job, its input and its output in the artifact bucket
    request = json.loads(json.dumps(body).replace("{output}", analytics_job["output"]))
    before = aws.table_items()

    # When tenant finance submits a job that names one of them
    status, reply = post(api, "finance", request)

    # Then it is refused with 422 naming the field and saying why, and nothing is written or queued
    assert status == 422, reply
    [detail] = reply["error"]["details"]
    assert detail["field"] == field
    assert "another tenant's data" in detail["reason"]
    assert aws.table_items() == before
    assert aws.dispatch_messages() == []


def test_a_request_cannot_say_where_its_outputs_go(aws: AwsStack, api: Any) -> None:
    # When tenant finance asks for its outputs to go under tenant analytics's
    body = {
        "job_type": "word-count",
        "parameters": {"input": tenant_input("a.txt", tenant="finance")},
        "output_prefix": f"s3://{aws.env['ARTIFACT_BUCKET']}/outputs/analytics/",
    }
    status, reply = post(api, "finance", body)

    # Then the field is refused, and nothing is written
    assert status == 422, reply
    assert reply["error"]["details"] == [{"field": "output_prefix", "reason": "unknown field"}]
    assert aws.table_items() == []


def test_the_owner_may_chain_its_own_output_into_a_new_job(api: Any, analytics_job: dict[str, Any]) -> None:
    status, job = post(
        api, "analytics", {"job_type": "word-count", "parameters": {"input": analytics_job["output"]}}
    )

    assert status == 202, job
    assert job["tenant"] == "analytics"


def test_a_file_dropped_under_one_tenants_prefix_is_that_tenants_job_only(aws: AwsStack, api: Any) -> None:
    # When a file is dropped under tenant analytics's prefix
    assert drop(aws, "incoming/analytics/word-count/notes.txt") == {"batchItemFailures": []}

    # Then it is analytics's job, and tenant finance neither sees it nor can reach it
    [item] = job_items(aws)
    assert item["tenant"]["S"] == "analytics"
    job_id = item["pk"]["S"].removeprefix("JOB#")
    assert get(api, "/jobs", "finance")[1]["jobs"] == []
    assert get(api, f"/jobs/{job_id}", "finance", resource="/jobs/{job_id}")[0] == 404
    assert get(api, f"/jobs/{job_id}", "analytics", resource="/jobs/{job_id}")[0] == 200


def test_a_rule_that_would_give_one_tenants_file_to_another_still_makes_no_job(
    aws: AwsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a policy (built past the loader, which refuses it) whose rule makes files under tenant
    # analytics's prefix jobs of tenant finance
    data = ports().policy.model_dump(mode="json")
    data["file_drop"] = [
        {
            "prefix": "incoming/analytics/",
            "tenant": "finance",
            "job_type": "word-count",
            "parameters": {"input": "{uri}"},
        }
    ]
    monkeypatch.setattr(ports(), "policy", PolicyDocument.model_validate(data))

    # When a file is dropped there
    result = drop(aws, "incoming/analytics/ledger.txt")

    # Then admission refuses finance reading it: the record is done with, and no job exists
    assert result == {"batchItemFailures": []}
    assert job_items(aws) == []
    assert aws.dispatch_messages() == []


def test_a_key_whose_tenant_segment_is_no_tenant_name_makes_no_job(aws: AwsStack) -> None:
    assert drop(aws, "incoming/-x/word-count/notes.txt") == {"batchItemFailures": []}

    assert job_items(aws) == []


def test_lineage_and_artifact_listings_never_show_another_tenants_data(
    api: Any, analytics_job: dict[str, Any]
) -> None:
    job_id = analytics_job["job_id"]
    # Given the owner sees its job's input and output in lineage and in the job's artifacts
    for uri, role in ((THEIRS, "input"), (analytics_job["output"], "output")):
        status, body = get(api, "/artifacts", "analytics", uri=uri)
        assert (status, [(u["job_id"], u["role"]) for u in body["uses"]]) == (200, [(job_id, role)])
    status, page = get(
        api, f"/jobs/{job_id}/artifacts", "analytics", resource="/jobs/{job_id}/artifacts", limit="1"
    )
    assert (status, [a["uri"] for a in page["artifacts"]]) == (200, [analytics_job["output"]])

    # When tenant finance asks about the same objects and the same job
    # Then lineage answers with none of analytics's uses, and the job's artifacts are not found
    for uri in (THEIRS, analytics_job["output"]):
        status, body = get(api, "/artifacts", "finance", uri=uri)
        assert (status, body["uses"]) == (200, [])
    status, body = get(api, f"/jobs/{job_id}/artifacts", "finance", resource="/jobs/{job_id}/artifacts")
    assert (status, body["error"]["code"]) == (404, "not_found")
    # and a page token of analytics's listing does not open it from finance's own job
    _, own = post(
        api, "finance", {"job_type": "word-count", "parameters": {"input": tenant_input("a.txt", "finance")}}
    )
    token = page["next_token"] or "eyJwayI6IHt9fQ=="
    status, body = get(
        api,
        f"/jobs/{own['job_id']}/artifacts",
        "finance",
        resource="/jobs/{job_id}/artifacts",
        next_token=token,
    )
    assert 400 <= status < 500
    assert analytics_job["output"] not in json.dumps(body)


def test_a_manual_retry_is_refused_once_the_policy_no_longer_allows_its_input(
    aws: AwsStack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a failed job of tenant analytics that read from its ingest prefix
    job = submit_job(api, "word-count", tenant_input("notes.txt"))
    aws.dispatch_messages(delete=True)
    store = ports().store
    current = store.get(job["job_id"])
    assert current is not None
    store.save(current.model_copy(update={"status": JobStatus.FAILED}), previous=current)
    # and a policy that now lets tenants read only their own outputs
    data = ports().policy.model_dump(mode="json")
    data["inputs"] = {"sources": [{"bucket": "@artifacts", "prefix": "outputs/{tenant}/"}]}
    data["file_drop"] = []
    monkeypatch.setattr(ports(), "policy", PolicyDocument.model_validate(data))

    # When the owner asks for a new attempt
    status, reply, _ = api(api_event("POST", f"/jobs/{job['job_id']}/retry", resource="/jobs/{job_id}/retry"))

    # Then it is refused naming the input, and the job stays as it was
    assert status == 422, reply
    assert reply["error"]["details"][0]["field"] == "parameters.input"
    assert store.get(job["job_id"]).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert aws.dispatch_messages() == []
