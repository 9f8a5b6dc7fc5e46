"""The local API Gateway: HTTP requests become REST proxy events for the calling tenant, and the
function's proxy responses become HTTP replies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from batchplane_tools.local.apigateway import ApiGateway, api_gateway_event, tenant_of


@pytest.mark.parametrize(
    ("headers", "tenant"),
    [
        ({"Authorization": "Tenant acme"}, "acme"),
        ({"authorization": "tenant  acme "}, "acme"),
        ({"Authorization": "Tenant "}, "local"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "local"),
        ({}, "local"),
    ],
)
def test_tenant_is_named_by_the_authorization_header_else_local(headers: dict[str, str], tenant: str) -> None:
    assert tenant_of(headers) == tenant


def test_event_is_a_rest_proxy_event_under_the_v1_stage_with_the_tenants_identity() -> None:
    event = api_gateway_event(
        "GET", "/v1/jobs?status=RUNNING&status=FAILED&next=", {"Authorization": "Tenant acme"}, None
    )

    assert (event["path"], event["resource"], event["httpMethod"]) == ("/jobs", "/jobs", "GET")
    assert event["queryStringParameters"] == {"status": "FAILED", "next": ""}
    assert event["multiValueQueryStringParameters"] == {"status": ["RUNNING", "FAILED"], "next": [""]}
    assert event["multiValueHeaders"] == {"Authorization": ["Tenant acme"]}
    context = event["requestContext"]
    assert (context["path"], context["stage"]) == ("/v1/jobs", "v1")
    assert context["identity"]["userArn"] == "arn:aws:sts::123456789012:assumed-role/acme/local"
    assert event["body"] is None


def test_event_without_a_query_has_no_query_parameters() -> None:
    event = api_gateway_event("POST", "/jobs", {}, "{}")

    assert (event["path"], event["queryStringParameters"], event["multiValueQueryStringParameters"]) == (
        "/jobs",
        None,
        None,
    )
    assert event["body"] == "{}"


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def api(calls: list[dict[str, Any]]) -> Iterator[str]:
    def invoke(event: dict[str, Any]) -> Any:
        calls.append(event)
        if event["path"] == "/broken":
            raise RuntimeError("boom")
        return {
            "statusCode": 201,
            "headers": {"Content-Length": "999", "X-One": "1"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "body": json.dumps({"echo": event["body"]}),
        }

    gateway = ApiGateway("127.0.0.1", 0, invoke)
    try:
        yield gateway.url
    finally:
        gateway.stop()


def test_request_reaches_the_function_and_its_response_comes_back(
    api: str, calls: list[dict[str, Any]]
) -> None:
    request = urllib.request.Request(
        api + "/v1/jobs", data=b'{"a": 1}', method="POST", headers={"Authorization": "Tenant acme"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        status, headers, body = response.status, response.headers, response.read()

    assert status == 201
    assert json.loads(body) == {"echo": '{"a": 1}'}
    assert headers["Content-Length"] == str(len(body))
    assert (headers["X-One"], headers["X-Many"], headers["Content-Type"]) == ("1", "a, b", "application/json")
    [event] = calls
    assert (event["httpMethod"], event["path"]) == ("POST", "/jobs")
    assert event["requestContext"]["identity"]["caller"] == "AROALOCAL:acme"


def test_a_failing_function_is_a_502(api: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(api + "/broken", timeout=10)

    assert raised.value.code == 502
    assert json.loads(raised.value.read()) == {"message": "Internal server error"}
