"""What a function gives up on: the reason it logs (never the payload), and a batch's failures kept
apart from those of another invocation running at the same moment in the same process."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from batchplane.failed_records.reasons import REASON_LIMIT, reason_of
from batchplane.models.dispatch import DispatchMessage
from tests.support import LambdaContext, load_event, load_function, sqs_event


class Secretive(BaseModel):
    count: int
    name: str


def test_a_validation_error_is_told_by_field_without_the_value_it_refused() -> None:
    # Given a model refusing a value that must not reach the logs
    with pytest.raises(ValidationError) as refused:
        Secretive.model_validate({"count": "hunter2-password"})

    # When its reason is told
    reason = reason_of(refused.value)

    # Then it names each field and problem, and not the value
    assert reason == (
        "ValidationError: 2 validation error(s) for Secretive: "
        "count: Input should be a valid integer, unable to parse string as an integer; name: Field required"
    )
    assert "hunter2" not in reason


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionError("DynamoDB unreachable"), "ConnectionError: DynamoDB unreachable"),
        (TimeoutError(), "TimeoutError"),
        (KeyError("Records"), "KeyError: 'Records'"),
    ],
)
def test_an_error_is_told_by_its_type_and_message(error: Exception, reason: str) -> None:
    assert reason_of(error) == reason


def test_a_long_message_is_cut() -> None:
    reason = reason_of(RuntimeError("x" * 5000))

    assert len(reason) == REASON_LIMIT and reason.startswith("RuntimeError: xxx") and reason.endswith("…")


def test_two_invocations_at_once_each_report_their_own_failed_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the dispatcher, whose records wait for each other at a barrier (nothing reaches AWS), and
    # two SQS batches: A holds a malformed message and a good one, B a good one
    app = load_function("dispatcher")
    body = json.loads(load_event("sqs/dispatch.json")["Records"][0]["body"])
    a_is_waiting = threading.Event()
    both_running = threading.Barrier(2, timeout=10)

    def dispatch(ports: Any, message: DispatchMessage, *, receive_count: int) -> None:
        if message.job_id == "a":
            a_is_waiting.set()
        both_running.wait()

    monkeypatch.setattr(app, "dispatch", dispatch)
    monkeypatch.setattr(app, "ports", lambda: None)
    batch_a = sqs_event([("a-bad", "not json", 1), ("a-good", json.dumps({**body, "job_id": "a"}), 1)])
    batch_b = sqs_event([("b-good", json.dumps({**body, "job_id": "b"}), 1)])

    # When B's invocation starts while A's is still running, after A's malformed record failed
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(app.handler, batch_a, LambdaContext(aws_request_id="a"))
        assert a_is_waiting.wait(timeout=10)
        b = pool.submit(app.handler, batch_b, LambdaContext(aws_request_id="b"))

        # Then each reports its own failures: A's malformed message goes back to its queue, B's none
        assert a.result(timeout=20) == {"batchItemFailures": [{"itemIdentifier": "a-bad"}]}
        assert b.result(timeout=20) == {"batchItemFailures": []}
