"""REST submission end to end on moto: request -> table -> dispatch message -> SubmitJob in Batch."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from batchplane.adapters.clients import client
from batchplane_tools.fixtures import post_job
from tests.support import api_event, load_event, tenant_input

INPUT = tenant_input("word-count/notes.txt")
THEIR_INPUT = tenant_input("word-count/notes.txt", tenant="finance")


def post(body: object, key: str | None = None, tenant: str = "analytics") -> dict:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return api_event("POST", "/jobs", body=body, headers=headers, tenant=tenant)


def test_posted_job_is_queued_recorded_and_submitted_to_batch(aws, api) -> None:
    # Given the API Gateway event of a POST /jobs (events/api/post_job.json, in this stack's bucket)
    event = post_job(ingest_bucket=aws.env["INGEST_BUCKET"])

    # When it is handled
    status, job, headers = api(event)

    # Then the caller gets 202 with the QUEUED job, owned by the IAM principal's tenant
    assert status == 202, job
    assert job["status"] == "QUEUED"
    assert job["tenant"] == "analytics"
    assert job["parameters"] == {"input": INPUT, "mode": "both"}
    assert headers["Location"] == f"/jobs/{job['job_id']}"
    # and one dispatch message carries the first attempt
    messages = aws.dispatch_messages()
    assert [json.loads(m["Body"])["attempt"] for m in messages] == [1]

    # When the dispatcher consumes it
    result = aws.run_dispatcher()

    # Then Batch has exactly one job with the deterministic name, the routed queue and definition
    assert result == {"batchItemFailures": []}
    [summary] = aws.batch_jobs()
    assert summary["jobName"] == f"bp-{job['job_id']}-1"
    [described] = aws.client("batch").describe_jobs(jobs=[summary["jobId"]])["jobs"]
    assert described["jobQueue"] == aws.env["ON_DEMAND_JOB_QUEUE"]
    assert described["jobDefinition"].split("/")[-1].startswith("batchplane-test-word-count:")
    assert described["parameters"] == {"input": INPUT, "mode": "both"}
    assert described["tags"] == {
        "bp:job_id": job["job_id"],
        "bp:attempt": "1",
        "bp:tenant": "analytics",
        "bp:job_type": "word-count",
    }
    # and the job records the attempt as SUBMITTED with its Batch job id
    status, stored, _ = api(api_event("GET", f"/jobs/{job['job_id']}", resource="/jobs/{job_id}"))
    assert status == 200
    assert stored["status"] == "SUBMITTED"
    [attempt] = stored["attempts"]
    assert attempt["batch_job_id"] == summary["jobId"]
    assert attempt["capacity"] == "ON_DEMAND"
    assert [h["event"] for h in stored["history"]] == ["admitted", "submitted"]


def test_spot_first_job_is_submitted_to_the_spot_queue_with_its_resources(aws, api) -> None:
    status, job, _ = api(
        post({"job_type": "sort-large", "parameters": {"input": INPUT}, "vcpus": 2, "memory_mib": 1024})
    )
    assert status == 202
    calls = aws.record_calls("batch")

    aws.run_dispatcher()

    [submit] = [params for _, operation, params in calls if operation == "SubmitJob"]
    assert submit["jobQueue"] == aws.env["SPOT_JOB_QUEUE"]
    assert submit["jobDefinition"] == "batchplane-test-sort-large"
    overrides = submit["containerOverrides"]
    assert overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"},
        {"type": "MEMORY", "value": "1024"},
    ]
    environment = {e["name"]: e["value"] for e in overrides["environment"]}
    assert environment == {
        "BATCHPLANE_JOB_ID": job["job_id"],
        "BATCHPLANE_ATTEMPT": "1",
        # each attempt writes under a prefix of its own, which says which attempt wrote what
        "BATCHPLANE_OUTPUT_PREFIX": f"{job['output_prefix']}attempt-1/",
    }
    assert submit["timeout"] == {"attemptDurationSeconds": 1800}
    assert submit["retryStrategy"] == {"attempts": 1}


def test_same_idempotency_key_and_body_returns_the_same_job_and_creates_nothing(aws, api) -> None:
    body = {"job_type": "word-count", "parameters": {"input": INPUT}}
    _, first, _ = api(post(body, key="order-42"))
    items_after_first = len(aws.table_items())

    status, second, headers = api(post(body, key="order-42"))

    assert status == 202
    assert second["job_id"] == first["job_id"]
    assert headers["Idempotent-Replayed"] == "true"
    assert len(aws.table_items()) == items_after_first
    assert len(aws.dispatch_messages(delete=True)) == 1


def test_idempotency_key_is_per_tenant(aws, api) -> None:
    _, mine, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}, key="order-42"))

    body = {"job_type": "word-count", "parameters": {"input": THEIR_INPUT}}
    status, theirs, _ = api(post(body, key="order-42", tenant="finance"))

    assert status == 202
    assert theirs["job_id"] != mine["job_id"]


def test_listing_is_newest_first_filtered_and_paginated(aws, api) -> None:
    ids = []
    for kind in ("word-count", "sort-large", "word-count", "word-count"):
        _, job, _ = api(post({"job_type": kind, "parameters": {"input": INPUT}}))
        ids.append(job["job_id"])
    api(post({"job_type": "word-count", "parameters": {"input": THEIR_INPUT}}, tenant="finance"))

    status, page1, _ = api(api_event("GET", "/jobs", query={"job_type": "word-count", "limit": "2"}))
    assert status == 200
    assert [j["job_id"] for j in page1["jobs"]] == [ids[3], ids[2]]
    assert page1["next_token"]

    _, page2, _ = api(
        api_event(
            "GET", "/jobs", query={"job_type": "word-count", "limit": "2", "next_token": page1["next_token"]}
        )
    )
    assert [j["job_id"] for j in page2["jobs"]] == [ids[0]]

    _, queued, _ = api(api_event("GET", "/jobs", query={"status": "QUEUED"}))
    assert {j["job_id"] for j in queued["jobs"]} == set(ids)
    _, running, _ = api(api_event("GET", "/jobs", query={"status": "RUNNING"}))
    assert running["jobs"] == []


def test_one_tenant_never_sees_or_touches_another_tenants_job(aws, api) -> None:
    _, job, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}, tenant="analytics"))
    path = f"/jobs/{job['job_id']}"

    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/retry")):
        status, body, _ = api(
            api_event(method, path + suffix, tenant="finance", resource="/jobs/{job_id}" + suffix)
        )
        assert status == 404, (method, suffix, body)
        assert body["error"]["code"] == "not_found"

    _, theirs, _ = api(api_event("GET", "/jobs", tenant="finance"))
    assert theirs["jobs"] == []


def test_a_next_token_of_another_tenant_is_refused(aws, api) -> None:
    for _ in range(3):
        api(post({"job_type": "word-count", "parameters": {"input": INPUT}}, tenant="analytics"))
    _, page, _ = api(api_event("GET", "/jobs", query={"limit": "1"}, tenant="analytics"))

    status, body, _ = api(
        api_event("GET", "/jobs", query={"next_token": page["next_token"]}, tenant="finance")
    )

    assert status in {400, 422}
    assert body["error"]["details"][0]["field"] == "next_token"


def test_cancel_of_a_submitted_job_terminates_its_batch_job(aws, api) -> None:
    _, job, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}))
    aws.run_dispatcher()
    calls = aws.record_calls("batch")

    status, cancelled, _ = api(
        api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel")
    )

    assert status == 200
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["history"][-1]["event"] == "cancelled"
    [summary] = aws.batch_jobs()
    # (moto finishes its Batch jobs at once, so the call is what can be checked, not its effect)
    [terminate] = [params for _, operation, params in calls if operation == "TerminateJob"]
    assert terminate["jobId"] == summary["jobId"]
    assert terminate["reason"].startswith("Cancelled by batchplane: requested by arn:aws:sts::")


def test_cancel_before_dispatch_means_the_attempt_is_never_left_running(aws, api) -> None:
    # Given a job cancelled while its dispatch message is still in the queue
    _, job, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}))
    api(api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel"))
    calls = aws.record_calls("batch")

    # When the dispatcher consumes the message
    aws.run_dispatcher()

    # Then the submission is refused by the record's guard and the Batch job is terminated
    [summary] = aws.batch_jobs()
    [terminate] = [params for _, operation, params in calls if operation == "TerminateJob"]
    assert terminate["jobId"] == summary["jobId"]
    _, stored, _ = api(api_event("GET", f"/jobs/{job['job_id']}", resource="/jobs/{job_id}"))
    assert stored["status"] == "CANCELLED"
    assert stored["attempts"] == []


def test_retry_of_a_cancelled_job_queues_a_second_attempt(aws, api) -> None:
    _, job, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}))
    aws.run_dispatcher()
    api(api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel"))

    status, retried, _ = api(
        api_event("POST", f"/jobs/{job['job_id']}/retry", resource="/jobs/{job_id}/retry")
    )
    aws.run_dispatcher()

    assert status == 202
    assert retried["status"] == "QUEUED"
    names = sorted(j["jobName"] for j in aws.batch_jobs())
    assert names == [f"bp-{job['job_id']}-1", f"bp-{job['job_id']}-2"]


def test_openapi_document_describes_the_routes(aws, api) -> None:
    status, schema, _ = api(load_event("api/openapi.json"))

    assert status == 200
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/retry"} <= set(
        schema["paths"]
    )
    assert "SubmitJobBody" in json.dumps(schema)


@pytest.mark.parametrize("fixture", ["get_job.json", "list_jobs.json", "cancel_job.json", "retry_job.json"])
def test_every_api_fixture_is_routed(aws, api, fixture: str) -> None:
    status, body, _ = api(load_event(f"api/{fixture}"))

    # The fixture's job does not exist in a fresh table: 404 from the use case, not "no route".
    assert status in (200, 404), body
    if status == 404:
        assert "no route" not in body["error"]["message"]


def test_a_new_instance_makes_only_the_clients_its_first_request_uses(aws, api) -> None:
    # Given a new instance: no boto3 session or client made yet
    from batchplane.adapters.clients import _session, made_clients

    assert made_clients() == []

    # When its first request submits a job
    status, job, _ = api(post_job(ingest_bucket=aws.env["INGEST_BUCKET"]))

    # Then it made DynamoDB's and SQS's clients, from one session, and not S3's, SNS's,
    # EventBridge's or Batch's (a session costs about 50 ms, a client from it 5-30 ms)
    assert status == 202, job
    assert made_clients() == ["dynamodb", "sqs"]
    assert _session.cache_info().misses == 1


def test_a_cancel_sent_again_after_terminate_job_failed_stops_the_batch_job(aws, api) -> None:
    # Given a submitted job whose first cancel was written but whose TerminateJob Batch throttled
    # past botocore's retries: the client got a 5xx
    _, job, _ = api(post({"job_type": "word-count", "parameters": {"input": INPUT}}))
    aws.run_dispatcher()
    throttled: list[str] = []

    def throttle_once(params: dict, **_: object) -> None:
        if not throttled:
            throttled.append(params["jobId"])
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "slow down"}}, "TerminateJob"
            )

    client("batch").meta.events.register("before-parameter-build.batch.TerminateJob", throttle_once)
    cancel = api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel")
    first, _, _ = api(cancel)
    calls = aws.record_calls("batch")

    # When the client sends the cancel again
    status, body, _ = api(cancel)

    # Then the first cancel was answered 503 (Batch throttled it past botocore's retries: try again);
    # the second hears the job is already CANCELLED, and the Batch job is stopped this time
    assert (first, status, body["error"]["code"]) == (503, 409, "invalid_state")
    [summary] = aws.batch_jobs()
    assert throttled == [summary["jobId"]]
    assert [params["jobId"] for _, operation, params in calls if operation == "TerminateJob"] == [
        summary["jobId"]
    ]
