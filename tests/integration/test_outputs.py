"""Outputs are recorded as they are written: the artifact bucket's "Object Created" events become
output artifacts of the attempt whose prefix they are under, with their version ids, once each."""

from __future__ import annotations

from typing import Any

from tests.conftest import AwsStack
from tests.support import LambdaContext, get_job, load_event, load_function, submit_job, tenant_input


def _created(aws: AwsStack, key: str, *, bucket: str | None = None, version: str = "v1") -> dict[str, Any]:
    """events/s3/eventbridge_output_created.json, aimed at this stack's artifact bucket and `key`."""
    event = load_event("s3/eventbridge_output_created.json")
    name = bucket or aws.env["ARTIFACT_BUCKET"]
    event["resources"] = [f"arn:aws:s3:::{name}"]
    event["detail"]["bucket"]["name"] = name
    event["detail"]["object"].update({"key": key, "version-id": version})
    return event


def _record(event: dict[str, Any]) -> Any:
    return load_function("artifacts").handler(event, LambdaContext(function_name="artifacts"))


def test_an_output_is_recorded_under_the_attempt_that_wrote_it(aws: AwsStack, api: Any) -> None:
    # Given a job of tenant analytics
    job = submit_job(api, "word-count", tenant_input("in.txt"))

    # When its attempt 2 writes counts.json, and S3's event is delivered twice
    event = _created(aws, f"outputs/analytics/{job['job_id']}/attempt-2/counts.json", version="3HL4k")
    assert _record(event) == {"recorded": 1, "skipped": 0}
    _record(event)

    # Then the job shows it once, as attempt 2's output, with its size, ETag and version id
    outputs = [a for a in get_job(api, job["job_id"])["artifacts"] if a["role"] == "output"]
    assert outputs == [
        {
            "uri": f"s3://{aws.env['ARTIFACT_BUCKET']}/outputs/analytics/{job['job_id']}/attempt-2/counts.json",
            "size": 1187,
            "etag": "5d41402abc4b2a76b9719d911017c592",
            "version_id": "3HL4k",
            "role": "output",
            "attempt": 2,
        }
    ]


def test_a_key_naming_another_tenants_job_or_another_bucket_is_not_recorded(aws: AwsStack, api: Any) -> None:
    # Given a job of tenant analytics
    job = submit_job(api, "word-count", tenant_input("in.txt"))

    # When objects claim to be its outputs under another tenant's path, in another bucket, or
    # under a job that does not exist
    claims = [
        _created(aws, f"outputs/intruder/{job['job_id']}/attempt-1/x.csv"),
        _created(aws, f"outputs/analytics/{job['job_id']}/attempt-1/x.csv", bucket="someone-elses-bucket"),
        _created(aws, "outputs/analytics/00000000-0000-0000-0000-000000000000/attempt-1/x.csv"),
        _created(aws, "reports/daily.csv"),
    ]

    # Then none is recorded
    assert [_record(event)["recorded"] for event in claims] == [0, 0, 0, 0]
    assert [a for a in get_job(api, job["job_id"])["artifacts"] if a["role"] == "output"] == []
