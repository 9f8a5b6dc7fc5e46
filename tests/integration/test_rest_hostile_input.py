"""Hostile input over REST: bodies that break a parser, media types that are not JSON, text that is not
Unicode, page tokens made up or carried elsewhere, bodies API Gateway base64-encoded. Each gets a 4xx
with the error JSON naming what is wrong, never a 5xx, and nothing is written."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support import INGEST_BUCKET, api_event

INPUT = f"s3://{INGEST_BUCKET}/incoming/analytics/notes.txt"  # tenant analytics's own
VALID = {"job_type": "word-count", "parameters": {"input": INPUT}}
JSON = {"Content-Type": "application/json"}


def post(body: object, headers: dict[str, str] | None = None, tenant: str = "analytics") -> dict:
    """POST /jobs with exactly these headers' Content-Type (none when `headers` has none)."""
    event = api_event("POST", "/jobs", body=body, tenant=tenant)
    kept = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    event["headers"] = {**kept, **(JSON if headers is None else headers)}
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    return event


def base64_encoded(event: dict) -> dict:
    """The event as API Gateway makes it for a binary media type: the body base64-encoded."""
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    return event


def error_of(response, status: int, code: str) -> dict[str, str]:
    got, body, _ = response
    assert got == status, body
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return {d["field"]: d["reason"] for d in body["error"]["details"]}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 30_000 + "]" * 30_000, "nested deeper than 16 levels"),
        ('{"job_type": "word-count", "parameters": ' + "{" * 17 + "}" * 17 + "}", "nested deeper than 16"),
        ('{"job_type": "word-count", "vcpus": ' + "9" * 4_301 + "}", "a number of 4301 characters"),
        ('{"job_type": "word-count", "vcpus": 1e999}', "1e999 is out of range"),
        ('{"job_type": "word-count", "vcpus": NaN}', "NaN is not JSON"),
        ('{"job_type": "word-count", "parameters": ', "Expecting value (line 1, column 42)"),
    ],
)
def test_a_body_beyond_the_parsers_bounds_is_a_400_and_writes_nothing(
    aws, api, text: str, reason: str
) -> None:
    # Given an empty table, When a body nested too deep, with a huge number or not JSON is posted
    response = api(post(text))

    # Then it is refused with 400 naming the body and why, and nothing is written or queued
    assert reason in error_of(response, 400, "malformed_json")["body"]
    assert aws.table_items() == []
    assert aws.dispatch_messages() == []


def test_a_body_at_the_depth_bound_is_read(aws, api) -> None:
    nested = {"job_type": "word-count", "parameters": {"input": INPUT}, "inputs": [{"uri": INPUT}]}

    assert api(post(nested))[0] == 202


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        "application/jsonx",
    ],
)
def test_a_body_that_is_not_json_is_a_415_naming_the_content_type(aws, api, content_type: str) -> None:
    # When a JSON body is posted under another media type
    response = api(post(VALID, {"Content-Type": content_type}))

    # Then it is refused with 415 naming Content-Type, and nothing is written
    assert "Content-Type" in error_of(response, 415, "unsupported_media_type")
    assert aws.table_items() == []


def test_post_jobs_with_a_trailing_slash_gets_the_same_body_checks(aws, api) -> None:
    # Given the route spelled /jobs/, which the router takes for /jobs
    def to_slash(event: dict) -> dict:
        event["path"] = event["requestContext"]["path"] = "/jobs/"
        return event

    # When a body that is not JSON, and one over the API's size limit, are posted there
    not_json = api(to_slash(post(VALID, {"Content-Type": "text/plain"})))
    too_big = api(to_slash(post({**VALID, "parameters": {"input": INPUT, "mode": "x" * 70_000}})))

    # Then they get the answers /jobs gives, and nothing is written
    assert "Content-Type" in error_of(not_json, 415, "unsupported_media_type")
    assert too_big[0] == 413, too_big
    assert aws.table_items() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "Application/JSON"},
        {"content-type": "APPLICATION/JSON; Charset=UTF-8"},
        {"Content-Type": 'application/json;charset="utf-8"'},
        {},  # no Content-Type: read as JSON, as API Gateway's REST APIs read it
    ],
)
def test_json_is_json_however_its_media_type_is_spelled(aws, api, headers: dict[str, str]) -> None:
    status, job, _ = api(post(VALID, headers))

    assert status == 202, job
    assert job["parameters"]["input"] == INPUT


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"job_type": "word-count", "parameters": {"input": "' + INPUT + '\\ud800"}}', "parameters.input"),
        (
            '{"job_type": "word-count", "parameters": {"input": "' + INPUT + '", "m\\udc00": "x"}}',
            "parameters",
        ),
        ('{"job_type": "word-\\ud800", "parameters": {"input": "' + INPUT + '"}}', "job_type"),
        ('{"job_type": "word-count", "inputs": [{"uri": "s3://bucket/\\ud800"}]}', "inputs.0.uri"),
    ],
)
def test_text_that_is_not_unicode_is_a_422_naming_the_field(aws, api, body: str, field: str) -> None:
    # Given a JSON escape that makes a lone surrogate (no UTF-8 holds it, nor does DynamoDB)
    response = api(post(body))

    # Then the field is refused as not valid Unicode, and nothing is written (no transaction is tried)
    fields = error_of(response, 422, "invalid_request")
    assert any(name.startswith(field) and "Unicode" in reason for name, reason in fields.items()), fields
    assert aws.table_items() == []


def test_a_query_parameter_that_is_not_unicode_is_a_422(aws, api) -> None:
    event = api_event("GET", "/jobs")
    event["queryStringParameters"] = {"job_type": "word-\ud800"}
    event["multiValueQueryStringParameters"] = {"job_type": ["word-\ud800"]}

    assert "Unicode" in error_of(api(event), 422, "invalid_request")["job_type"]


def test_an_input_named_twice_is_a_422_not_a_failed_transaction(aws, api) -> None:
    body = {**VALID, "inputs": [{"uri": INPUT}, {"uri": INPUT}]}

    fields = error_of(api(post(body)), 422, "invalid_request")

    assert "named twice" in fields["inputs"]
    assert aws.table_items() == []


def test_a_base64_encoded_body_is_measured_as_sent(aws, api) -> None:
    # Given a body of 3,406 bytes, under word-count's 4,096 (its base64 is 4,544 bytes)
    body = json.dumps({**VALID, "parameters": {"input": INPUT, "mode": "both"}, "inputs": []})
    body = body[:-1] + ', "vcpus": 1' + " " * (3406 - len(body) - 12) + "}"
    assert len(body.encode()) == 3406

    # When API Gateway hands it over base64-encoded
    status, job, _ = api(base64_encoded(post(body)))

    # Then it is read, and judged by its own size
    assert status == 202, job


def test_a_base64_encoded_body_over_the_limit_names_its_decoded_size(aws, api) -> None:
    body = json.dumps({**VALID, "parameters": {"input": INPUT, "mode": "x" * 4100}})

    fields = error_of(api(base64_encoded(post(body))), 413, "request_too_large")

    assert f"{len(body)} bytes is over 4096" in fields["body"]
    assert aws.table_items() == []


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b'{"job_type": "word-count\xff"}').decode(), "not UTF-8 at byte 24"),
    ],
)
def test_a_base64_body_that_does_not_decode_is_a_400(aws, api, encoded: str, reason: str) -> None:
    event = post(VALID)
    event["body"], event["isBase64Encoded"] = encoded, True

    assert reason in error_of(api(event), 400, "malformed_json")["body"]


def _page_of_jobs(api, tenant: str = "analytics", **query: str) -> dict:
    query = {"limit": "1", **query}
    status, page, _ = api(api_event("GET", "/jobs", query=query, tenant=tenant))
    assert status == 200, page
    return page  # type: ignore[no-any-return]


def _raw(plain: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        _raw({"gsi1pk": "TENANT#analytics"}),  # the partition key alone: a key DynamoDB refuses
        _raw({"gsi1pk": "TENANT#analytics", "gsi1sk": "x", "pk": "JOB#x", "sk": "JOB"}) + "." + "A" * 43,
        base64.urlsafe_b64encode(b"[" * 1500).decode(),  # deep nesting once decoded, 2,000 characters
        "%%%",
    ],
)
def test_a_forged_page_token_is_a_422_before_dynamodb_is_asked(aws, api, token: str) -> None:
    # Given a tenant with jobs
    for _ in range(2):
        api(post(VALID))
    calls = aws.record_calls("dynamodb")

    # When it lists with a token it made up
    response = api(api_event("GET", "/jobs", query={"next_token": token}))

    # Then the token is refused with 422 at once: DynamoDB is never asked anything
    assert "next_token" in error_of(response, 422, "invalid_request")
    assert calls == []


def test_page_tokens_page_through_a_listing_and_nowhere_else(aws, api) -> None:
    # Given three jobs of one tenant, and the first page of one
    for _ in range(3):
        api(post(VALID))
    first = _page_of_jobs(api)
    token = first["next_token"]

    # Then the token opens the next page of that listing
    second = _page_of_jobs(api, next_token=token)
    assert second["jobs"][0]["job_id"] != first["jobs"][0]["job_id"]
    # and no other: another tenant's, another filter's, or with one character changed
    moved = [
        api(api_event("GET", "/jobs", query={"next_token": token}, tenant="finance")),
        api(api_event("GET", "/jobs", query={"next_token": token, "status": "QUEUED"})),
        api(api_event("GET", "/jobs", query={"next_token": token, "job_type": "sort-large"})),
        api(api_event("GET", "/jobs", query={"next_token": token[:-1] + ("A" if token[-1] != "A" else "B")})),
    ]
    for response in moved:
        assert error_of(response, 422, "invalid_request")["next_token"] == "not a token from this listing"


def test_the_key_is_read_once_and_only_by_a_listing_with_a_token(aws, api) -> None:
    from batchplane.adapters.clients import made_clients

    # Given two jobs, When they are listed on one page (no token in, none out)
    for _ in range(2):
        api(post(VALID))
    assert _page_of_jobs(api, limit="10")["next_token"] is None

    # Then the key was never read: no Secrets Manager client was even made
    assert "secretsmanager" not in made_clients()

    # When a listing pages through them, twice over
    calls = aws.record_calls("secretsmanager")
    for _ in range(2):
        token = _page_of_jobs(api)["next_token"]
        _page_of_jobs(api, next_token=token)

    # Then the key was read once, for the process
    assert [operation for _, operation, _ in calls] == ["GetSecretValue"]


def test_a_job_artifacts_token_does_not_open_another_jobs_artifacts(aws, api) -> None:
    # Given two jobs, and a token signed for the first one's artifact listing
    from batchplane.api.params import tokens

    first, second = (api(post(VALID))[1]["job_id"] for _ in range(2))
    token = tokens.sign(("artifacts", "analytics", first), _raw({"pk": f"JOB#{first}", "sk": "ART#1"}))

    # When it is used on the second job's artifacts
    response = api(
        api_event(
            "GET",
            f"/jobs/{second}/artifacts",
            query={"next_token": token},
            resource="/jobs/{job_id}/artifacts",
        )
    )

    # Then it is refused
    assert error_of(response, 422, "invalid_request")["next_token"] == "not a token from this listing"


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://{INGEST_BUCKET}/{'é' * 600}",  # 1,200 bytes: longer than any S3 key
        f"s3://{'b' * 64}/notes.txt",  # no bucket has such a name
        "s3://Bucket_Name/notes.txt",
    ],
)
def test_lineage_of_a_uri_no_object_can_have_is_a_422_naming_it(aws, api, uri: str) -> None:
    # When the lineage of a URI that names no possible S3 object is asked for
    response = api(api_event("GET", "/artifacts", query={"uri": uri}))

    # Then it is refused naming the field, before anything is read
    assert "uri" in error_of(response, 422, "invalid_request")
