"""The local stack's S3 notifications carry the object's versionId and a sequencer, as S3's do."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3 import notifications

from batchplane.models.s3_event import objects_in
from batchplane_tools.local.s3_events import Sequencer, add_versions_and_sequencers


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto with a queue notified of every object created in a versioned and an unversioned bucket;
    the patch is undone after the test (monkeypatch restores moto's own event maker)."""
    monkeypatch.setattr(notifications, "_get_s3_event", notifications._get_s3_event)
    with mock_aws():
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        url = sqs.create_queue(QueueName="drops")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for bucket in ("versioned-ingest", "plain-ingest"):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
                },
            )
        s3.put_bucket_versioning(Bucket="versioned-ingest", VersioningConfiguration={"Status": "Enabled"})
        yield s3, sqs, url


def notified(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    return [json.loads(m["Body"]) for m in messages if "Records" in json.loads(m["Body"])]


def test_notifications_carry_the_objects_version_and_a_sequencer_that_grows(moto_s3: Any) -> None:
    # Given the local stack's notifications
    s3, sqs, url = moto_s3
    add_versions_and_sequencers()
    add_versions_and_sequencers()  # applied twice (a second stack in one process): still once

    # When a key of a versioned bucket is written twice, and a key of an unversioned one once
    first = s3.put_object(Bucket="versioned-ingest", Key="incoming/a.txt", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket="versioned-ingest", Key="incoming/a.txt", Body=b"22")["VersionId"]
    s3.put_object(Bucket="plain-ingest", Key="incoming/a.txt", Body=b"333")

    # Then each event names its version where there is one, and S3's order is the events' order
    objects = [obj for message in notified(sqs, url) for obj in objects_in(message)]
    assert [(o.bucket, o.version_id) for o in objects] == [
        ("versioned-ingest", first),
        ("versioned-ingest", second),
        ("plain-ingest", None),
    ]
    orderings = [o.ordering() or "" for o in objects]
    assert orderings == sorted(orderings) and len(set(orderings)) == 3


def test_sequencers_grow_even_when_the_clock_stands_still_or_goes_back() -> None:
    readings = iter([5, 5, 3])
    sequencer = Sequencer(clock=lambda: next(readings))

    assert [sequencer(), sequencer(), sequencer()] == [
        "000000000000000005",
        "000000000000000006",
        "000000000000000007",
    ]
