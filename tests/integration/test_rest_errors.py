"""Bad input over REST: a clear JSON error naming the field, and nothing written to the table."""

from __future__ import annotations

import pytest

from tests.support import api_event, tenant_input

INPUT = tenant_input("word-count/notes.txt")
VALID = {"job_type": "word-count", "parameters": {"input": INPUT}}


def post(body: object, key: str | None = None, tenant: str = "analytics") -> dict:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return api_event("POST", "/jobs", body=body, headers=headers, tenant=tenant)


def assert_error(response, status: int, code: str, field: str, reason: str = "") -> None:
    got_status, body, _ = response
    assert got_status == status, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    fields = {d["field"]: d["reason"] for d in body["error"]["details"]}
    assert field in fields, fields
    assert reason in fields[field], fields


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "reason"),
    [
        ('{"job_type": "word-count", "parameters": ', 400, "malformed_json", "body", "Expecting value"),
        (
            {"job_type": "word-count", "parameters": {"input": 7}},
            422,
            "invalid_request",
            "parameters.input",
            "string",
        ),
        (
            {"job_type": "word-count", "parameters": "input"},
            422,
            "invalid_request",
            "parameters",
            "dictionary",
        ),
        ({**VALID, "vcpus": "two"}, 422, "invalid_request", "vcpus", "integer"),
        ({**VALID, "tenant": "finance"}, 422, "invalid_request", "tenant", "unknown field"),
        ({"parameters": {"input": INPUT}}, 422, "invalid_request", "job_type", "required"),
        ({"job_type": "mine-bitcoin"}, 422, "invalid_request", "job_type", "unknown job type"),
        (
            {"job_type": "word-count", "parameters": {"input": "ftp://x"}},
            422,
            "invalid_request",
            "parameters.input",
            "does not match",
        ),
        (
            {"job_type": "word-count", "parameters": {}},
            422,
            "invalid_request",
            "parameters.input",
            "required",
        ),
        ({**VALID, "vcpus": 3}, 422, "invalid_request", "vcpus", "outside 1..2"),
        ({**VALID, "memory_mib": 999999}, 422, "invalid_request", "memory_mib", "outside 1..2048"),
        (
            {**VALID, "parameters": {"input": INPUT, "mode": "x" * 5000}},
            413,
            "request_too_large",
            "body",
            "over 4096",
        ),
        ({**VALID, "inputs": [{"uri": "not-s3"}]}, 422, "invalid_request", "inputs.0.uri", "pattern"),
        ({**VALID, "priority": 101}, 422, "invalid_request", "priority", "outside 0..100"),
        ({**VALID, "priority": 10000}, 422, "invalid_request", "priority", "less than or equal to 9999"),
        ({**VALID, "priority": "high"}, 422, "invalid_request", "priority", "integer"),
    ],
)
def test_bad_submission_is_refused_naming_the_field_and_writes_nothing(
    aws, api, body, status, code, field, reason
) -> None:
    # Given an empty table, When a bad request is posted
    response = api(post(body))

    # Then the error names the field and the reason, and nothing is written or queued
    assert_error(response, status, code, field, reason)
    assert aws.table_items() == []
    assert aws.dispatch_messages() == []


def test_body_over_the_api_limit_is_refused_before_parsing(aws, api) -> None:
    response = api(post("{" + " " * 70_000))

    assert_error(response, 413, "request_too_large", "body", "over 65536")
    assert aws.table_items() == []


def test_tenant_over_its_in_flight_limit_gets_429_and_nothing_is_written(aws, api, monkeypatch) -> None:
    # Given a policy that allows one word-count job in flight per tenant, and one in flight
    from batchplane.wiring import ports

    policy = ports().policy
    limited = policy.model_copy(deep=True)
    object.__setattr__(limited.job_types["word-count"].admission, "max_in_flight_per_tenant", 1)
    monkeypatch.setattr(ports(), "policy", limited)
    assert api(post(VALID))[0] == 202
    before = aws.table_items()

    # When a second one is posted
    response = api(post(VALID, key="second"))

    # Then it is refused with 429, and the table is as it was (no idempotency key kept either)
    assert_error(response, 429, "quota_exceeded", "job_type", "at most 1")
    assert aws.table_items() == before
    # and another tenant is not affected
    theirs = {**VALID, "parameters": {"input": tenant_input("word-count/notes.txt", tenant="finance")}}
    assert api(post(theirs, tenant="finance"))[0] == 202


def test_finished_job_gives_its_in_flight_slot_back(aws, api, monkeypatch) -> None:
    from batchplane.wiring import ports

    limited = ports().policy.model_copy(deep=True)
    object.__setattr__(limited.job_types["word-count"].admission, "max_in_flight_per_tenant", 1)
    monkeypatch.setattr(ports(), "policy", limited)
    _, job, _ = api(post(VALID))
    api(api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel"))

    assert api(post(VALID))[0] == 202


def test_idempotency_key_reused_with_another_body_is_a_conflict(aws, api) -> None:
    api(post(VALID, key="order-42"))
    before = aws.table_items()

    response = api(post({**VALID, "parameters": {"input": INPUT, "mode": "lines"}}, key="order-42"))

    assert_error(response, 409, "idempotency_conflict", "Idempotency-Key", "another body")
    assert aws.table_items() == before


def test_cancel_of_a_finished_job_is_a_conflict(aws, api) -> None:
    _, job, _ = api(post(VALID))
    path = f"/jobs/{job['job_id']}/cancel"
    api(api_event("POST", path, resource="/jobs/{job_id}/cancel"))

    response = api(api_event("POST", path, resource="/jobs/{job_id}/cancel"))

    assert_error(response, 409, "invalid_state", "status", "terminal")


def test_retry_of_a_queued_job_is_a_conflict(aws, api) -> None:
    _, job, _ = api(post(VALID))

    response = api(api_event("POST", f"/jobs/{job['job_id']}/retry", resource="/jobs/{job_id}/retry"))

    assert_error(response, 409, "invalid_state", "status", "not FAILED or CANCELLED")


def test_unknown_job_id_is_404(aws, api) -> None:
    response = api(api_event("GET", "/jobs/0d9f7c1e-0000-0000-0000-000000000000", resource="/jobs/{job_id}"))

    assert_error(response, 404, "not_found", "job_id", "no such job")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"status": "DANCING"}, "status"),
        ({"next_token": "%%%"}, "next_token"),
    ],
)
def test_bad_listing_query_names_the_parameter(aws, api, query, field) -> None:
    status, body, _ = api(api_event("GET", "/jobs", query=query))

    assert status in (400, 422)
    assert field in {d["field"] for d in body["error"]["details"]}


def test_request_without_a_tenant_is_forbidden(aws, api) -> None:
    event = api_event("POST", "/jobs", body=VALID, headers={"Content-Type": "application/json"})
    event["requestContext"]["identity"]["userArn"] = None

    status, body, _ = api(event)

    assert status == 403
    assert body["error"]["code"] == "forbidden"
    assert aws.table_items() == []


def test_unknown_route_is_a_json_404(aws, api) -> None:
    status, body, _ = api(api_event("DELETE", "/jobs"))

    assert status == 404
    assert body["error"]["code"] == "not_found"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "InternalServerError"])
def test_aws_busy_past_botocores_retries_is_a_503_to_retry_and_writes_nothing(aws, api, code: str) -> None:
    # Given DynamoDB throttling (or failing) the job's write beyond what botocore's retries outlast
    from botocore.exceptions import ClientError

    from batchplane.adapters.clients import client

    def busy(**_: object) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "TransactWriteItems")

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.TransactWriteItems", busy)
    try:
        # When a job is posted
        status, body, headers = api(
            post({"job_type": "word-count", "parameters": {"input": INPUT}}, key="k-503")
        )
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.TransactWriteItems", busy)

    # Then the caller is told to try again shortly, in the error shape, and nothing was written
    assert (status, body["error"]["code"], headers.get("Retry-After")) == (503, "unavailable", "1"), body
    assert aws.table_items() == []

    # And the same request, sent again once DynamoDB answers, makes the job
    assert api(post({"job_type": "word-count", "parameters": {"input": INPUT}}, key="k-503"))[0] == 202
