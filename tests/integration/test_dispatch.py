"""The dispatcher submits each attempt exactly once, survives throttling and fails a bad submit once."""

from __future__ import annotations

from typing import Any

import botocore.endpoint
import pytest
from moto.batch.responses import BatchResponse
from moto.core.exceptions import JsonRESTError

from tests.support import LambdaContext, get_job, load_function, sqs_event, submit_job, tenant_input

INPUT = tenant_input("word-count/notes.txt")


def fail_submit_job(
    monkeypatch: pytest.MonkeyPatch, times: int, status: int, code: str, message: str = ""
) -> list[int]:
    """Make the emulated Batch answer the next `times` SubmitJob calls with an error.

    The error comes from the server side, so botocore's retry logic sees it as it would from AWS.
    """
    seen = [0]
    real = BatchResponse.submitjob

    def submitjob(self: BatchResponse) -> Any:
        if seen[0] >= times:
            return real(self)
        seen[0] += 1
        error = JsonRESTError(code, message or code)
        error.code = status
        raise error

    monkeypatch.setattr(BatchResponse, "submitjob", submitjob)
    return seen


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _seconds: None)


def submit(api, job_type: str = "word-count") -> dict:
    return submit_job(api, job_type, INPUT)


def test_throttled_submit_job_is_retried_by_botocore_and_lands_once(aws, api, monkeypatch) -> None:
    # Given Batch throttles the first two SubmitJob calls
    job = submit(api)
    throttled = fail_submit_job(monkeypatch, 2, 429, "TooManyRequestsException", "Too Many Requests")

    # When the dispatcher runs
    result = aws.run_dispatcher()

    # Then botocore's retries got it through, once
    assert result == {"batchItemFailures": []}
    assert throttled[0] == 2
    assert len(aws.batch_jobs()) == 1
    assert get_job(api, job["job_id"])["status"] == "SUBMITTED"


def test_throttling_that_outlasts_retries_returns_the_message_and_loses_nothing(
    aws, api, monkeypatch
) -> None:
    # Given Batch throttles every SubmitJob call
    job = submit(api)
    fail_submit_job(monkeypatch, 1000, 429, "TooManyRequestsException")

    # When the dispatcher runs
    result = aws.run_dispatcher()

    # Then the record is reported failed (SQS redelivers it), and the job waits, QUEUED
    assert len(result["batchItemFailures"]) == 1
    assert aws.batch_jobs() == []
    assert get_job(api, job["job_id"])["status"] == "QUEUED"


def test_server_error_is_retried_too(aws, api, monkeypatch) -> None:
    submit(api)
    fail_submit_job(monkeypatch, 1, 500, "ServerException")

    assert aws.run_dispatcher() == {"batchItemFailures": []}
    assert len(aws.batch_jobs()) == 1


def test_client_exception_fails_the_job_once_with_batchs_reason(aws, api, monkeypatch) -> None:
    # Given Batch refuses the submission (a job definition that does not exist)
    job = submit(api)
    message = aws.dispatch_messages(delete=True)[0]
    fail_submit_job(
        monkeypatch, 1000, 400, "ClientException", "JobDefinition batchplane-test-word-count does not exist"
    )
    handler = load_function("dispatcher").handler

    # When the message is handled, and then delivered again
    first = handler(sqs_event([(message["MessageId"], message["Body"], 1)]), LambdaContext())
    second = handler(sqs_event([(message["MessageId"], message["Body"], 2)]), LambdaContext())

    # Then the job failed once, with the reason, and the message is consumed both times
    assert first == second == {"batchItemFailures": []}
    stored = get_job(api, job["job_id"])
    assert stored["status"] == "FAILED"
    gave_up = [h for h in stored["history"] if h["event"] == "gave_up"]
    assert len(gave_up) == 1
    assert "does not exist" in gave_up[0]["reason"]


def test_redelivered_message_adopts_the_earlier_submission_instead_of_submitting_again(aws, api) -> None:
    # Given an attempt submitted to Batch whose record was lost (e.g. the function timed out after SubmitJob)
    job = submit(api)
    message = aws.dispatch_messages(delete=True)[0]
    aws.client("batch").submit_job(
        jobName=f"bp-{job['job_id']}-1",
        jobQueue=aws.env["ON_DEMAND_JOB_QUEUE"],
        jobDefinition="batchplane-test-word-count",
    )
    calls = aws.record_calls("batch")

    # When SQS redelivers the message
    result = load_function("dispatcher").handler(
        sqs_event([(message["MessageId"], message["Body"], 2)]), LambdaContext()
    )

    # Then nothing is submitted again and the existing Batch job is recorded
    assert result == {"batchItemFailures": []}
    assert [op for _, op, _ in calls if op == "SubmitJob"] == []
    [existing] = aws.batch_jobs()
    assert get_job(api, job["job_id"])["attempts"][0]["batch_job_id"] == existing["jobId"]


def test_twin_message_loses_the_race_and_its_batch_job_is_terminated(aws, api) -> None:
    # Given the same dispatch message delivered twice (SQS is at-least-once)
    job = submit(api)
    message = aws.dispatch_messages(delete=True)[0]
    handler = load_function("dispatcher").handler
    handler(sqs_event([(message["MessageId"], message["Body"], 1)]), LambdaContext())
    calls = aws.record_calls("batch")

    # When the twin is handled as a first delivery
    handler(sqs_event([("twin", message["Body"], 1)]), LambdaContext())

    # Then the job keeps its first Batch job, and the twin's is terminated
    recorded = get_job(api, job["job_id"])["attempts"][0]["batch_job_id"]
    [twin_submit] = [i for i, (_, op, _) in enumerate(calls) if op == "SubmitJob"]
    [terminate] = [params for _, op, params in calls if op == "TerminateJob"]
    assert terminate["jobId"] != recorded
    assert twin_submit >= 0


def test_malformed_message_is_reported_failed_so_it_reaches_the_dlq(aws) -> None:
    result = load_function("dispatcher").handler(
        sqs_event([("bad", '{"job_id": "x"}', 1), ("worse", "not json", 1)]), LambdaContext()
    )

    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}, {"itemIdentifier": "worse"}]}
