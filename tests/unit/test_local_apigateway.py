"""The local API Gateway: HTTP requests become REST proxy events for the calling tenant, and the
function's proxy responses become HTTP replies."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchplane.api.identity import Unauthenticated, caller_of
from batchplane_tools.local.apigateway import ApiGateway, ApiSpec, Refused, api_gateway_event, tenant_of
from batchplane_tools.local.template import Stack, load_template
from tests.support import TEMPLATE

SPEC = ApiSpec.of(Stack(name="batchplane-local", template=load_template(TEMPLATE)))


@pytest.mark.parametrize(
    ("headers", "tenant"),
    [
        ({"Authorization": "Tenant acme"}, "acme"),
        ({"authorization": "tenant  acme "}, "acme"),
        ({"Authorization": "AWS4-HMAC-SHA256 Credential=x"}, "local"),
        ({}, "local"),
    ],
)
def test_tenant_is_named_by_the_authorization_header_else_local(headers: dict[str, str], tenant: str) -> None:
    assert tenant_of(headers) == tenant


@pytest.mark.parametrize(
    "name", ["victim/x", "victim/", "/victim", "", "-victim", "a b", "x" * 129, "vict\u00efm"]
)
def test_a_name_the_deployed_mapping_would_not_read_back_is_refused(name: str) -> None:
    # Given a header naming something that is not a tenant name (victim/x is the role victim's session x)
    # When the gateway reads it, Then it refuses the request with the error JSON, acting as no one
    with pytest.raises(Refused) as refused:
        tenant_of({"Authorization": f"Tenant {name}"})

    assert refused.value.status == 403
    error = json.loads(refused.value.body)["error"]
    assert (error["code"], error["details"][0]["field"]) == ("forbidden", "Authorization")


@settings(max_examples=300, derandomize=True)
@given(name=st.text(alphabet=st.characters(codec="utf-8"), max_size=140))
def test_the_tenant_is_the_one_the_deployed_mapping_derives_or_none(name: str) -> None:
    # Given any name in the header, When the gateway makes the request's identity
    try:
        event = api_gateway_event("GET", "/v1/jobs", {"Authorization": f"Tenant {name}"}, None)
    except Refused:
        # Then either it refused it, and the deployed mapping would not read that name back as itself
        assert _deployed_tenant_of_role(name.strip()) != name.strip()
        return
    # or the deployed mapping reads exactly that tenant from the identity it made
    assert caller_of(event["requestContext"]).tenant == name.strip()


def _deployed_tenant_of_role(role: str) -> str | None:
    """The tenant the deployed API maps a caller that assumed the role `role` to, if any."""
    arn = f"arn:aws:sts::123456789012:assumed-role/{role}/session"
    try:
        return caller_of({"identity": {"userArn": arn}}).tenant
    except Unauthenticated:
        return None


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
        if event["path"] == "/jobs/broken":
            raise RuntimeError("boom")
        return {
            "statusCode": 201,
            "headers": {"Content-Length": "999", "X-One": "1"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "body": json.dumps({"echo": event["body"]}),
        }

    gateway = ApiGateway("127.0.0.1", 0, invoke, SPEC)
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
        urllib.request.urlopen(api + "/v1/jobs/broken", timeout=10)

    assert raised.value.code == 502
    assert json.loads(raised.value.read()) == {"message": "Internal server error"}


def _send(url: str, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v1/jobs"),
        ("OPTIONS", "/v1/jobs"),
        ("TRACE", "/v1/jobs"),
        ("DELETE", "/v1/jobs/abc"),
        ("BREW", "/v1/jobs"),
        ("GET", "/v1/nowhere"),
        ("POST", "/v1/jobs/abc"),
        ("GET", "/v1/jobs//artifacts"),
    ],
)
def test_a_method_or_route_the_template_does_not_declare_is_refused_as_api_gateway_refuses_it(
    api: str, calls: list[dict[str, Any]], method: str, path: str
) -> None:
    # When a request names a route or method the template's API does not have
    status, body = _send(api, method, path)

    # Then the function is never invoked, and the answer is API Gateway's 403 in the template's shape
    assert calls == []
    assert status == 403
    assert body.decode() == SPEC.missing_token_body
    assert json.loads(body)["error"]["code"] == "forbidden"


def test_a_head_request_gets_the_refusal_without_a_body(api: str, calls: list[dict[str, Any]]) -> None:
    status, body = _send(api, "HEAD", "/v1/jobs")

    assert (status, body, calls) == (403, b"", [])


def test_a_caller_naming_another_tenants_session_is_refused_before_the_function(
    api: str, calls: list[dict[str, Any]]
) -> None:
    status, body = _send(api, "GET", "/v1/jobs", {"Authorization": "Tenant victim/x"})

    assert (status, calls) == (403, [])
    assert json.loads(body)["error"]["details"][0]["field"] == "Authorization"


def test_the_spec_is_the_templates_routes_and_gateway_response() -> None:
    assert ("POST", "/jobs/{job_id}/cancel") in SPEC.routes
    assert SPEC.serves("POST", "/jobs/0d9f7c1e/cancel")
    assert not SPEC.serves("POST", "/jobs/0d9f7c1e/cancel/again")
    assert (
        json.loads(SPEC.missing_token_body)["error"]["details"][0]["reason"] == "Missing Authentication Token"
    )


def test_a_content_length_that_is_not_a_number_is_a_400_with_the_error_json(
    api: str, calls: list[dict[str, Any]]
) -> None:
    status, body = _send(api, "POST", "/v1/jobs", {"Content-Length": "many"})

    assert (status, calls) == (400, [])
    assert json.loads(body)["error"]["code"] == "bad_request"
