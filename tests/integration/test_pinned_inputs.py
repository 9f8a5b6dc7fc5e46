"""A job reads exactly the input version it was made for, on moto: the input's version (or ETag) is
recorded at admission, handed to the worker by the dispatcher (BATCHPLANE_INPUTS), read by the example
worker, and a changed input ends the job as INPUT_CHANGED, not retried, its history naming the input."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import pytest

from batchplane.models.job import FailureClass, JobStatus
from batchplane.wiring import ports
from tests.support import LambdaContext, api_event, batch_event, load_function, s3_notification, sqs_event
from workers import word_count

FIRST = b"hello\n"  # what the job is made for: 6 bytes
SECOND = b"thirty bytes of newer content\n"  # written after it: 30 bytes


def submit_job_of(aws, calls: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """The one SubmitJob the dispatcher made, as Batch received it."""
    aws.run_dispatcher()
    [submit] = [params for service, op, params in calls if (service, op) == ("batch", "SubmitJob")]
    return submit


def run_worker_as_batch_would(monkeypatch: pytest.MonkeyPatch, submit: dict[str, Any]) -> int:
    """word_count with the job's parameters as its command line and its environment as Batch sets it."""
    for variable in submit["containerOverrides"]["environment"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    return word_count.main(["--input", submit["parameters"]["input"], "--mode", "both"])


def counts_written(aws, submit: dict[str, Any]) -> dict[str, Any]:
    environment = {v["name"]: v["value"] for v in submit["containerOverrides"]["environment"]}
    bucket, prefix = environment["BATCHPLANE_OUTPUT_PREFIX"][5:].split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=f"{prefix}counts.json")["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def test_a_file_drop_job_whose_object_is_overwritten_before_it_is_read_fails_as_input_changed(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an object dropped where the bucket keeps no versions (its event carries no versionId),
    # made a job pinned to the object's ETag and submitted to Batch
    bucket, key = aws.env["INGEST_BUCKET"], "incoming/analytics/word-count/unversioned notes.txt"
    s3 = aws.client("s3")
    etag = s3.put_object(Bucket=bucket, Key=key, Body=FIRST)["ETag"].strip('"')
    event = s3_notification(
        "object_created_unversioned", bucket=bucket, key=quote_plus(key, safe="/"), eTag=etag
    )
    load_function("file_drop").handler(sqs_event([("m0", json.dumps(event), 1)]), LambdaContext())
    calls = aws.record_calls("batch")
    submit = submit_job_of(aws, calls)
    uri = f"s3://{bucket}/{key}"
    assert json.loads(
        {v["name"]: v["value"] for v in submit["containerOverrides"]["environment"]}["BATCHPLANE_INPUTS"]
    ) == [{"uri": uri, "etag": etag}]

    # When the object is overwritten before the worker reads it, and the worker runs
    s3.put_object(Bucket=bucket, Key=key, Body=SECOND)
    exit_code = run_worker_as_batch_would(monkeypatch, submit)

    # and Batch reports the attempt's end with the worker's exit code
    [job_id] = [tag for name, tag in submit["tags"].items() if name == "bp:job_id"]
    job = ports().store.get(job_id)
    assert job is not None and exit_code == 66
    state_change = load_function("state_change").handler
    for fixture in ("runnable", "starting", "running", "input_changed"):
        state_change(batch_event(fixture, job=job), LambdaContext())

    # Then the job failed for good as INPUT_CHANGED, its history naming the input and the ETag it was
    # made for, and no other attempt was dispatched (a retry would meet the same changed object)
    ended = ports().store.get(job_id)
    assert ended is not None and ended.status is JobStatus.FAILED
    [attempt] = ended.attempts
    assert (attempt.failure_class, attempt.exit_code) == (FailureClass.INPUT_CHANGED, 66)
    assert ended.history[-1].reason == (
        "attempt 1 found its input changed (exit code 66: Essential container in task exited); "
        f'input {uri} is no longer what the job was made for (ETag "{etag}"); a changed input is not retried'
    )
    assert aws.dispatch_messages() == []


def test_a_rest_job_with_an_input_version_reads_that_version_after_a_newer_one_is_written(
    aws, api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two versions of an object in a versioned bucket
    bucket, key = aws.env["INGEST_BUCKET"], "incoming/analytics/manual/two versions.txt"
    s3 = aws.client("s3")
    first = s3.put_object(Bucket=bucket, Key=key, Body=FIRST)["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=SECOND)
    uri = f"s3://{bucket}/{key}"

    # When a job is submitted over REST for the first version, dispatched, and its worker runs
    body = {
        "job_type": "word-count",
        "parameters": {"input": uri},
        "inputs": [{"uri": uri, "version_id": first}],
    }
    status, job, _ = api(api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"}))
    assert status == 202, job
    calls = aws.record_calls("batch")
    submit = submit_job_of(aws, calls)
    exit_code = run_worker_as_batch_would(monkeypatch, submit)

    # Then the worker counted the version the job was made for, not the newer one
    assert exit_code == 0
    assert counts_written(aws, submit)["bytes"] == len(FIRST)
    [recorded] = [a for a in job["artifacts"] if a["role"] == "input"]
    assert (recorded["uri"], recorded["version_id"]) == (uri, first)


def test_a_replayed_idempotency_key_with_another_input_version_is_a_conflict(aws, api) -> None:
    uri = f"s3://{aws.env['INGEST_BUCKET']}/incoming/analytics/manual/notes.txt"

    def post(version: str) -> int:
        body = {
            "job_type": "word-count",
            "parameters": {"input": uri},
            "inputs": [{"uri": uri, "version_id": version}],
        }
        headers = {"Content-Type": "application/json", "Idempotency-Key": "order-42"}
        return int(api(api_event("POST", "/jobs", body=body, headers=headers))[0])

    assert (post("v1"), post("v1"), post("v2")) == (202, 202, 409)


@pytest.mark.parametrize(
    ("pin", "field"),
    [({"version_id": "has space"}, "version_id"), ({"etag": "not-an-etag"}, "etag")],
)
def test_a_malformed_pin_is_refused_naming_its_field_and_writes_nothing(aws, api, pin, field) -> None:
    uri = f"s3://{aws.env['INGEST_BUCKET']}/incoming/analytics/manual/notes.txt"
    body = {"job_type": "word-count", "parameters": {"input": uri}, "inputs": [{"uri": uri, **pin}]}

    status, error, _ = api(
        api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"})
    )

    assert status == 422
    [detail] = error["error"]["details"]
    assert detail["field"] == f"inputs.0.{field}"
    assert detail["reason"].startswith("String should match pattern")
    assert aws.table_items() == []
