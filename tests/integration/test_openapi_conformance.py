"""The OpenAPI document against the API it describes: schemathesis generates requests from
/openapi.json, valid and invalid, one operation at a time and as linked sequences (POST /jobs, then
GET, cancel and retry of the job it made), sends them through the local API Gateway to the API
function on moto, and every answer must be declared: no 5xx, no status the document does not list
for the operation, and a body of the declared shape."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from batchplane_tools.local.apigateway import ApiGateway, ApiSpec
from tests.support import LambdaContext, api_event, load_function

SEED = 20_251_201
EXAMPLES_PER_OPERATION = 25  # for each generation mode (valid, invalid), for each operation
SEQUENCES = 25  # stateful runs, each up to STEPS linked calls
STEPS = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class Tally:
    """Every case sent and every check that failed on it, kept to the end: one run gives the
    whole picture instead of the first failure."""

    cases: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # (operation, status) -> how often

    def check(self, case: schemathesis.Case, response: Any) -> None:
        self.cases += 1
        self.answers[(f"{case.method} {case.path}", response.status_code)] += 1
        for check in CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except FailureGroup as failed:
                line = (
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {failed.exceptions[0]}"
                )
                self.failures.setdefault(check.__name__, []).append(line[:400])

    def count(self, check: str) -> int:
        return len(self.failures.get(check, []))

    def report(self) -> str:
        counts = {name: len(lines) for name, lines in self.failures.items()}
        samples = [line for lines in self.failures.values() for line in lines[:3]]
        answers = ", ".join(f"{op} {status}: {n}" for (op, status), n in sorted(self.answers.items()))
        return f"{self.cases} cases; failures by check: {counts}\nanswers: {answers}\n" + "\n".join(samples)


@pytest.fixture
def served(aws) -> Iterator[str]:
    """The API function behind the local API Gateway, on loopback; its URL."""
    handler = load_function("api").handler
    gateway = ApiGateway("127.0.0.1", 0, lambda event: handler(event, LambdaContext()), ApiSpec.of(aws.stack))
    try:
        yield gateway.url
    finally:
        gateway.stop()


@pytest.fixture
def document(served: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    schema.config.update(base_url=served)
    return schema


def test_every_operation_answers_only_what_the_document_declares(document, served: str) -> None:
    # Given the document the API serves, When schemathesis sends each operation valid and invalid
    # requests (fixed seed and count)
    tally = Tally()
    for result in document.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def send(case: schemathesis.Case) -> None:
                tally.check(case, case.call(base_url=served))

            send()

    # Then no answer is a server error, and every status, content type and body is declared
    print("\n" + tally.report())
    assert tally.cases >= EXAMPLES_PER_OPERATION * 7
    assert tally.count("not_a_server_error") == 0, tally.report()
    assert tally.count("status_code_conformance") == 0, tally.report()
    assert not tally.failures, tally.report()


def _forget_every_job(aws) -> None:
    """Empty the jobs table: jobs, Idempotency-Keys, quota counts."""
    dynamodb, table = aws.client("dynamodb"), aws.env["JOBS_TABLE_NAME"]
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key=item)


def test_linked_calls_answer_only_what_the_document_declares(aws, document, served: str) -> None:
    # Given the document's links (POST /jobs -> the job's GET, cancel, retry and artifacts), as the
    # document's caller reads it (its inputs narrowed to that tenant's input sources)
    tally = Tally()
    machine = document.as_state_machine()

    class Recorded(machine):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Each sequence starts from an empty table, so it meets none of the state (jobs,
            # Idempotency-Keys, quotas) of the sequences before it: the same draws get the same
            # answers, as Hypothesis requires of a test it replays.
            _forget_every_job(aws)

        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            return case.call(base_url=served, **kwargs)

        def validate_response(self, response: Any, case: schemathesis.Case, *_: Any, **__: Any) -> None:
            tally.check(case, response)

    # When schemathesis follows them in sequences of calls (fixed seed and count)
    seed(SEED)(Recorded)
    run_state_machine_as_test(
        Recorded,
        settings=settings(
            max_examples=SEQUENCES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )

    # Then every call of every sequence answers as declared
    print("\n" + tally.report())
    assert not tally.failures, tally.report()
    # and the links were followed: operations on jobs that POST /jobs had just made answered 2xx.
    # (Which linked operations Hypothesis draws varies with what the worker ran before, though the
    # seed is fixed: one run of the whole suite drew GET 0 times, another run of this test alone twice.)
    assert tally.answers[("POST /jobs", 202)] > 0, tally.report()
    linked = [
        count
        for (operation, status), count in tally.answers.items()
        if "{job_id}" in operation and status < 300
    ]
    assert sum(linked) > 0, tally.report()


def served_document(api) -> dict[str, Any]:
    status, document, _ = api(api_event("GET", "/openapi.json"))
    assert status == 200
    return document  # type: ignore[no-any-return]


def test_every_error_is_declared_in_the_one_error_shape_422_included(api) -> None:
    # Given the document the API serves
    document = served_document(api)

    # Then every operation declares 403, 413, 422, 429 and 500, and every 4xx and 5xx it declares
    # is an ErrorBody, {"error": {"code", "message", "details"}}, as the README's contract says
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = operation["responses"]
            assert {"403", "413", "422", "429", "500", "503"} <= set(declared), (method, path)
            for status, response in declared.items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    error = document["components"]["schemas"]["ErrorView"]
    assert set(error["required"]) == {"code", "message", "details"}
    # and nothing of Powertools' {"detail": [...]} validation shape is left
    assert "HTTPValidationError" not in json.dumps(document)


def test_each_operation_declares_what_its_use_case_can_answer(api) -> None:
    declared = {
        (method.upper(), path): sorted(int(s) for s in operation["responses"])
        for path, operations in served_document(api)["paths"].items()
        for method, operation in operations.items()
    }

    assert declared == {
        ("POST", "/jobs"): [202, 400, 403, 404, 409, 413, 415, 422, 429, 500, 503],
        ("GET", "/jobs"): [200, 403, 413, 422, 429, 500, 503],
        ("GET", "/jobs/{job_id}"): [200, 403, 404, 409, 413, 422, 429, 500, 503],
        ("GET", "/jobs/{job_id}/artifacts"): [200, 403, 404, 409, 413, 422, 429, 500, 503],
        ("POST", "/jobs/{job_id}/cancel"): [200, 403, 404, 409, 413, 422, 429, 500, 503],
        ("POST", "/jobs/{job_id}/retry"): [202, 403, 404, 409, 413, 422, 429, 500, 503],
        ("GET", "/artifacts"): [200, 403, 413, 422, 429, 500, 503],
        ("GET", "/summary"): [200, 403, 413, 422, 429, 500, 503],
        ("GET", "/jobs/{job_id}/attempts/{attempt}/log"): [200, 403, 404, 409, 413, 422, 429, 500, 503],
        ("POST", "/bulk/cancel"): [200, 400, 403, 409, 413, 415, 422, 429, 500, 503],
        ("POST", "/bulk/retry"): [200, 400, 403, 409, 413, 415, 422, 429, 500, 503],
        ("GET", "/usage"): [200, 403, 413, 422, 429, 500, 503],
    }


def test_the_routes_that_check_a_body_are_the_operations_that_take_one(api) -> None:
    from batchplane.api.routes import BODY_ROUTES

    taking = {
        (method.upper(), path)
        for path, operations in served_document(api)["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }

    assert taking == BODY_ROUTES


def test_a_submission_is_one_of_the_policys_job_types_with_its_rules(api) -> None:
    from batchplane.wiring import ports

    document = served_document(api)
    body = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    variants = [document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]] for ref in body["oneOf"]]

    policy = ports().policy
    assert [v["allOf"][1]["properties"]["job_type"]["const"] for v in variants] == list(policy.job_types)
    assert [v["allOf"][0] for v in variants] == [{"$ref": "#/components/schemas/SubmitJobBody"}] * len(
        variants
    )
    [word_count] = [v["allOf"][1] for v in variants if v["title"] == "word-count"]
    assert word_count["properties"]["parameters"]["required"] == ["input"]
    assert word_count["properties"]["parameters"]["properties"]["mode"]["pattern"] == "^(words|lines|both)$"
    assert word_count["properties"]["vcpus"]["maximum"] == policy.job_types["word-count"].resources.vcpus.max


def test_the_document_links_a_submitted_job_to_its_operations(api) -> None:
    document = served_document(api)

    links = document["paths"]["/jobs"]["post"]["responses"]["202"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "get_job",
        "get_job_artifacts",
        "cancel_job",
        "retry_job",
    }
    assert all(link["parameters"] == {"job_id": "$response.body#/job_id"} for link in links.values())
    operation_ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    assert operation_ids >= {link["operationId"] for link in links.values()}
