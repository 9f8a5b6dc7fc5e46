"""A record a function gives up on is logged once, at WARNING, with its id and the reason, before it
goes back to its queue (SQS), its shard (the outbox's stream, test_outbox.py) or is raised for Lambda
to retry and then keep in the DLQ (EventBridge). Real-shaped events from events/, on moto."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from batchplane.wiring import ports
from tests.support import LambdaContext, load_event, load_function, s3_notification, sqs_event


def given_up(caplog: pytest.LogCaptureFixture, record_id: str) -> list[dict[str, Any]]:
    """The fields of the WARNING lines that name `record_id` as the record given up on."""
    return [
        r.__dict__
        for r in caplog.records
        if r.levelno == logging.WARNING and r.__dict__.get("record_id") == record_id
    ]


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every line's message and fields, to look for what must never be logged."""
    return json.dumps([{**r.__dict__, "msg": r.getMessage()} for r in caplog.records], default=str)


def test_a_malformed_dispatch_message_is_logged_with_its_id_and_reason_then_reported(
    aws, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the dispatch message of events/sqs/dispatch.json with a value no attempt can have
    [record] = load_event("sqs/dispatch.json")["Records"]
    body = {**json.loads(record["body"]), "vcpus": "all-of-them-s3cr3t"}
    message_id = record["messageId"]

    # When the dispatcher gets it
    event = sqs_event([(message_id, json.dumps(body), 5)])
    result = load_function("dispatcher").handler(event, LambdaContext())

    # Then it goes back to its queue (its fifth receive: next stop the DLQ), and one WARNING says which
    # message and why, by field, without the value it refused
    assert result == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    [line] = given_up(caplog, message_id)
    assert line["event_source"] == "aws:sqs"
    assert line["receive_count"] == "5"
    assert line["reason"] == (
        "ValidationError: 1 validation error(s) for DispatchMessage: "
        "vcpus: Input should be a valid integer, unable to parse string as an integer"
    )
    assert "s3cr3t" not in everything_logged(caplog)


def test_an_ingest_record_that_is_not_json_is_logged_with_its_id_then_reported(
    aws, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an SQS batch from the ingest queue: one S3 notification, and a body that is not JSON
    good = json.dumps(s3_notification(bucket=aws.env["INGEST_BUCKET"]))
    event = sqs_event([("good", good, 1), ("garbled", "{not json", 2)])

    # When the file-drop function gets it
    result = load_function("file_drop").handler(event, LambdaContext())

    # Then only the garbled one goes back, logged once with its id and the parser's reason
    assert result == {"batchItemFailures": [{"itemIdentifier": "garbled"}]}
    [line] = given_up(caplog, "garbled")
    assert line["reason"] == (
        "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert given_up(caplog, "good") == []


def test_an_ingest_record_whose_store_fails_is_logged_with_its_id_and_the_error(
    aws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB unreachable
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(ports().store, "create", unreachable)
    body = json.dumps(s3_notification(bucket=aws.env["INGEST_BUCKET"]))

    # When a notification arrives
    result = load_function("file_drop").handler(sqs_event([("m1", body, 1)]), LambdaContext())

    # Then it goes back to its queue, and the log says which and why
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    [line] = given_up(caplog, "m1")
    assert line["reason"] == "ConnectionError: DynamoDB unreachable"


def test_an_object_created_event_invoked_directly_that_fails_is_logged_with_its_id_then_raised(
    aws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3's "Object Created" through EventBridge straight to the file-drop function, and the
    # table unreachable
    event = load_event("s3/eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = aws.env["INGEST_BUCKET"]

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(ports().store, "create", unreachable)

    # When the function gets it, Then it raises, for Lambda to retry the whole event
    with pytest.raises(ConnectionError):
        load_function("file_drop").handler(event, LambdaContext())

    # and one WARNING names the event and the reason
    [line] = given_up(caplog, event["id"])
    assert (line["event_source"], line["reason"]) == ("aws.s3", "ConnectionError: DynamoDB unreachable")


def test_a_state_change_that_fails_is_logged_with_its_event_id_then_raised(
    aws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the jobs table unreachable, and Batch's "Job State Change" for a failed attempt
    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(ports().store, "get", unreachable)
    event = load_event("batch/application_error.json")

    # When the state-change function gets it, Then it raises (Lambda retries, then the DLQ)
    with pytest.raises(ConnectionError):
        load_function("state_change").handler(event, LambdaContext())

    # and one WARNING names the event and the reason first
    [line] = given_up(caplog, event["id"])
    assert (line["event_source"], line["detail_type"]) == ("aws.batch", "Batch Job State Change")
    assert line["reason"] == "ConnectionError: DynamoDB unreachable"


def test_an_output_event_that_fails_is_logged_with_its_event_id_then_raised(
    aws, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3's "Object Created" for an output in the stack's artifact bucket, and the table unreachable
    event = load_event("s3/eventbridge_output_created.json")
    event["detail"]["bucket"]["name"] = aws.env["ARTIFACT_BUCKET"]

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(ports().store, "get", unreachable)

    # When the artifacts function gets it, Then it raises for Lambda to retry
    with pytest.raises(ConnectionError):
        load_function("artifacts").handler(event, LambdaContext())

    # and one WARNING names the event and the reason
    [line] = given_up(caplog, event["id"])
    assert line["event_source"] == "aws.s3"
    assert line["reason"] == "ConnectionError: DynamoDB unreachable"


def test_a_handled_event_logs_no_warning(aws, caplog: pytest.LogCaptureFixture) -> None:
    # Given Batch's event for a job batchplane did not submit
    event = load_event("batch/foreign_job.json")

    # When the state-change function handles it, Then nothing is given up and nothing is warned of
    assert load_function("state_change").handler(event, LambdaContext())["outcome"] == "ignored"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
