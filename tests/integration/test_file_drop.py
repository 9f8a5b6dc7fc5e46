"""File drop on moto: S3 object-created notifications become jobs, exactly once, record by record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchplane.wiring import ports
from tests.support import LambdaContext, load_event, load_function, s3_notification, sqs_event

DECODED_KEY = "incoming/analytics/word-count/red flowerÉ notes.txt"


@pytest.fixture
def drop(aws):
    """Deliver S3 notifications through the ingest queue's SQS event, as the template wires them."""
    handler = load_function("file_drop").handler

    def deliver(*notifications: dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
        bodies = [(f"m{i}", json.dumps(n), receive_count) for i, n in enumerate(notifications)]
        return handler(sqs_event(bodies), LambdaContext())

    return deliver


def notification(aws, fixture: str = "object_created", **fields: Any) -> dict[str, Any]:
    return s3_notification(fixture, bucket=aws.env["INGEST_BUCKET"], **fields)


def jobs_in_table(aws) -> list[dict[str, Any]]:
    return [i for i in aws.table_items() if i["pk"]["S"].startswith("JOB#") and i["sk"]["S"] == "JOB"]


def test_dropped_file_becomes_one_queued_job_with_its_input_recorded(aws, drop) -> None:
    # Given an object-created notification with a URL-encoded unicode key
    event = notification(aws)
    calls = aws.record_calls("dynamodb", "sqs", "s3")

    # When the file-drop function handles it
    result = drop(event)

    # Then one job exists, with the decoded key in its parameters and its input artifact
    assert result == {"batchItemFailures": []}
    [job] = jobs_in_table(aws)
    uri = f"s3://{aws.env['INGEST_BUCKET']}/{DECODED_KEY}"
    assert job["parameters"]["M"]["input"]["S"] == uri
    assert job["tenant"]["S"] == "analytics"  # whose prefix it was dropped under
    assert job["job_type"]["S"] == "word-count"
    [artifact] = job["artifacts"]["L"]
    assert artifact["M"]["uri"]["S"] == uri
    assert artifact["M"]["size"]["N"] == "48213"
    assert artifact["M"]["version_id"]["S"] == "Kp0vX7mQ2cR8sT4uW1yZ6aB3dE9fG5hJ"
    # and the ingest path made at most two AWS calls: the transactional put and the dispatch message
    assert [op for _, op, _ in calls] == ["TransactWriteItems", "SendMessage"]
    assert len(aws.dispatch_messages()) == 1


def test_the_same_object_version_delivered_twice_makes_one_job(aws, drop) -> None:
    drop(notification(aws))
    drop(notification(aws), receive_count=2)

    assert len(jobs_in_table(aws)) == 1
    assert len(aws.dispatch_messages(delete=True)) == 1


def test_a_new_version_of_the_same_key_makes_a_new_job(aws, drop) -> None:
    drop(notification(aws))
    drop(notification(aws, versionId="second-version", sequencer="006929C6C8A1B2C3FF", eTag="new"))

    assert len(jobs_in_table(aws)) == 2


def test_an_older_event_after_a_newer_one_makes_no_job_for_stale_content(aws, drop) -> None:
    newer = notification(aws, versionId="v2", sequencer="006929C6C8A1B2C3FF")
    older = notification(aws, versionId="v1", sequencer="006929C6C8A1B2C3D4")

    drop(newer)
    result = drop(older)

    assert result == {"batchItemFailures": []}
    [item] = jobs_in_table(aws)
    assert item["artifacts"]["L"][0]["M"]["version_id"]["S"] == "v2"


# AWS's sample sequencer (the S3 notification example) and a later event's: shorter, with greater
# left-most (time) digits. Left-padded, the later one would compare as the older.
OLDER_LONGER = "0055AED6DCD90281E5"
NEWER_SHORTER = "0055AED6DCD90282"


def versions_with_jobs(aws) -> list[str]:
    return sorted(item["artifacts"]["L"][0]["M"]["version_id"]["S"] for item in jobs_in_table(aws))


def latest_item(aws) -> dict[str, Any]:
    key = f"OBJ#{aws.env['INGEST_BUCKET']}#{DECODED_KEY}"
    return aws.client("dynamodb").get_item(
        TableName=aws.env["JOBS_TABLE_NAME"], Key={"pk": {"S": key}, "sk": {"S": "LATEST"}}
    )["Item"]


def test_a_newer_event_with_a_shorter_sequencer_after_an_older_longer_one_makes_its_job(aws, drop) -> None:
    # Given the key's older event, with the longer sequencer, ingested
    drop(notification(aws, versionId="v1", sequencer=OLDER_LONGER))

    # When the newer event arrives, with a shorter sequencer
    result = drop(notification(aws, versionId="v2", sequencer=NEWER_SHORTER, eTag="new"))

    # Then the new content gets its job too
    assert result == {"batchItemFailures": []}
    assert versions_with_jobs(aws) == ["v1", "v2"]


def test_an_older_longer_event_after_a_newer_shorter_one_makes_no_job(aws, drop) -> None:
    # Given the key's newer event, with the shorter sequencer, ingested
    drop(notification(aws, versionId="v2", sequencer=NEWER_SHORTER))

    # When the older event arrives late, with a longer sequencer
    result = drop(notification(aws, versionId="v1", sequencer=OLDER_LONGER, eTag="old"))

    # Then it makes no job for out-of-date content
    assert result == {"batchItemFailures": []}
    assert versions_with_jobs(aws) == ["v2"]


def test_a_key_ingested_before_the_right_pad_rule_is_of_unknown_order_once(aws, drop) -> None:
    # Given the key's LATEST item as stacks before the right-pad rule wrote it: the left-padded
    # sequencer, which cannot be compared with a right-padded one
    aws.client("dynamodb").put_item(
        TableName=aws.env["JOBS_TABLE_NAME"],
        Item={
            "pk": {"S": f"OBJ#{aws.env['INGEST_BUCKET']}#{DECODED_KEY}"},
            "sk": {"S": "LATEST"},
            "sequencer": {"S": OLDER_LONGER.rjust(64, "0")},
            "job_id": {"S": "made-before-the-upgrade"},
        },
    )

    # When the key's next event arrives
    drop(notification(aws, versionId="v2", sequencer=NEWER_SHORTER))

    # Then its order is unknown, so it is taken as the newer: it makes its job, and the item now holds
    # its right-padded sequencer in place of the old value
    assert versions_with_jobs(aws) == ["v2"]
    item = latest_item(aws)
    assert "sequencer" not in item
    assert item["right_padded_sequencer"]["S"] == NEWER_SHORTER.ljust(64, "0")
    # and from then on the key's events are ordered by the rule: an older one makes nothing
    drop(notification(aws, versionId="v1", sequencer=OLDER_LONGER, eTag="old"))
    assert versions_with_jobs(aws) == ["v2"]


def test_a_rejected_record_does_not_block_its_neighbours(aws, drop) -> None:
    # Given three objects in one notification, the first over word-count's 1 GiB input limit
    event = notification(aws, "object_created_batch", size=2 * 1024**3)

    # When the batch is handled
    result = drop(event)

    # Then the oversized one is rejected (not retried) and the other two are jobs
    assert result == {"batchItemFailures": []}
    assert len(jobs_in_table(aws)) == 2


def test_a_transient_failure_retries_only_its_own_record(aws, drop, monkeypatch) -> None:
    # Given DynamoDB failing for one object only
    store = ports().store
    real_create = store.create

    def flaky(job, **kwargs):
        if "ärger" in job.parameters["input"]:
            raise ConnectionError("DynamoDB unreachable")
        return real_create(job, **kwargs)

    monkeypatch.setattr(store, "create", flaky)
    records = load_event("s3/object_created_batch.json")["Records"]
    bucket = aws.env["INGEST_BUCKET"]
    for record in records:
        record["s3"]["bucket"]["name"] = bucket
    messages = [{"Records": [r]} for r in records]

    # When the three messages arrive in one SQS batch
    result = drop(*messages)

    # Then only that message is reported for retry, and the others became jobs
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert len(jobs_in_table(aws)) == 2


def test_record_with_a_missing_field_is_kept_for_replay(aws, drop) -> None:
    event = notification(aws)
    del event["Records"][0]["s3"]["object"]["key"]

    assert drop(event) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert jobs_in_table(aws) == []


def test_event_from_another_bucket_is_skipped(aws, drop) -> None:
    assert drop(s3_notification(bucket="someone-elses-bucket")) == {"batchItemFailures": []}
    assert jobs_in_table(aws) == []


def test_s3_test_event_is_accepted_and_makes_nothing(aws, drop) -> None:
    assert drop(load_event("s3/test_event.json")) == {"batchItemFailures": []}
    assert aws.table_items() == []


def test_a_1024_byte_unicode_key_survives_into_parameters_and_artifacts(aws, drop) -> None:
    from urllib.parse import quote_plus

    prefix = "incoming/analytics/word-count/"
    stem = "ü" * ((1024 - len(prefix) - len(".txt")) // 2)
    key = prefix + stem + ".txt"
    assert len(key.encode()) == 1024

    drop(notification(aws, key=quote_plus(key, safe="/")))

    [item] = jobs_in_table(aws)
    assert item["parameters"]["M"]["input"]["S"] == f"s3://{aws.env['INGEST_BUCKET']}/{key}"
    assert item["artifacts"]["L"][0]["M"]["uri"]["S"].endswith(key)


def test_zero_byte_object_is_rejected_with_a_reason(aws) -> None:
    from batchplane.models.s3_event import objects_in
    from batchplane.service.ingest import Ingested, ingest_object

    [obj] = objects_in(notification(aws, size=0))

    result = ingest_object(ports(), obj)

    assert result.outcome is Ingested.REJECTED
    assert result.reason == "object is 0 bytes; the rule for incoming/{tenant}/word-count/ wants at least 1"
    assert jobs_in_table(aws) == []


def test_folder_markers_and_unmatched_keys_are_skipped(aws, drop) -> None:
    drop(notification(aws, key="incoming/analytics/word-count/", size=0))
    drop(notification(aws, key="elsewhere/file.txt"))
    drop(notification(aws, key="incoming/analytics/word-count/notes.csv"))  # word-count wants .txt
    drop(notification(aws, key="incoming/word-count/notes.txt"))  # tenant word-count's, no rule there

    assert jobs_in_table(aws) == []


def test_a_key_matching_two_rules_goes_to_the_first(aws, drop, monkeypatch) -> None:
    # Given a policy whose first rule (incoming/{tenant}/) also covers the second's keys
    policy = ports().policy
    data = policy.model_dump(mode="json")
    data["file_drop"].insert(
        0, {"prefix": "incoming/{tenant}/", "job_type": "checksum-manifest", "parameters": {"input": "{uri}"}}
    )
    from batchplane.policy.document import parse_policy

    monkeypatch.setattr(ports(), "policy", parse_policy(data))

    drop(notification(aws))

    [item] = jobs_in_table(aws)
    assert item["job_type"]["S"] == "checksum-manifest"
    assert item["tenant"]["S"] == "analytics"


def test_eventbridge_shape_is_accepted_too(aws, drop) -> None:
    event = load_event("s3/eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = aws.env["INGEST_BUCKET"]

    assert drop(event) == {"batchItemFailures": []}
    assert len(jobs_in_table(aws)) == 1


def test_direct_s3_invocation_is_handled(aws) -> None:
    result = load_function("file_drop").handler(notification(aws), LambdaContext())

    assert result == {"batchItemFailures": []}
    assert len(jobs_in_table(aws)) == 1
