"""The lifecycle's fixtures: what was published (alerts, job events), and an engine that submits,
dispatches and delivers Batch events through the real handlers, as the deployed stack would."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import LambdaContext, api_event, batch_event, load_function, tenant_input, watch_queues

INPUT = tenant_input("sort/big.csv")


@pytest.fixture
def watch(aws):
    """SQS queues subscribed to the alert topic and to every batchplane event on the job bus."""
    sqs = aws.client("sqs")
    alerts_url, events_url = watch_queues(
        aws, topic_arn=aws.env["ALERT_TOPIC_ARN"], bus=aws.env["EVENT_BUS_NAME"], name="watch"
    )

    def receive(url: str) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            received.extend(json.loads(m["Body"]) for m in messages)
            # Deleted, not left to the visibility timeout: on a slow machine a test running past 30 s
            # would see what it received before come back as if delivered twice.
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        return received

    class Watch:
        @staticmethod
        def alert_messages() -> list[dict[str, Any]]:
            """The SNS notifications (Message, MessageAttributes, ...) published since the last look."""
            return receive(alerts_url)

        @staticmethod
        def alerts() -> list[str]:
            return [m["Message"] for m in Watch.alert_messages()]

        @staticmethod
        def job_events() -> list[dict[str, Any]]:
            return receive(events_url)

    return Watch


@pytest.fixture
def engine(aws, api):
    """Submit, dispatch and deliver Batch events, as the deployed stack would: each state change's
    write reaches the outbox function through the table's stream."""
    state_change = load_function("state_change").handler

    class Engine:
        @staticmethod
        def submit(job_type: str = "sort-large", **extra: Any) -> dict[str, Any]:
            body = {"job_type": job_type, "parameters": {"input": INPUT}, **extra}
            status, job, _ = api(
                api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"})
            )
            assert status == 202, job
            aws.run_dispatcher()
            return Engine.get(job["job_id"])

        @staticmethod
        def get(job_id: str) -> dict[str, Any]:
            status, job, _ = api(api_event("GET", f"/jobs/{job_id}", resource="/jobs/{job_id}"))
            assert status == 200
            return job

        @staticmethod
        def event(fixture: str, job: dict[str, Any], attempt: int = 0) -> dict[str, Any]:
            """A Batch state event of the job's attempt, named as batchplane named its Batch job."""
            item = aws.client("dynamodb").get_item(
                TableName=aws.env["JOBS_TABLE_NAME"],
                Key={"pk": {"S": f"JOB#{job['job_id']}"}, "sk": {"S": "JOB"}},
            )["Item"]
            names = {n: a["M"]["job_name"]["S"] for n, a in item["attempts"]["M"].items()}
            raw = {
                **job,
                "attempts": [
                    {**a, "job_name": names[str(a["number"])]} if str(a["number"]) in names else a
                    for a in job["attempts"]
                ],
            }
            return batch_event(fixture, job=raw, attempt=attempt)

        @staticmethod
        def deliver(fixture: str, job: dict[str, Any], attempt: int = 0) -> dict[str, Any]:
            """The state-change function handles the event; then the stream's records go to the outbox."""
            outcome = state_change(Engine.event(fixture, job, attempt), LambdaContext())
            aws.outbox.drain()
            return outcome

        @staticmethod
        def run(job: dict[str, Any], ending: str) -> dict[str, Any]:
            """The current attempt goes RUNNABLE -> STARTING -> RUNNING -> `ending`; then dispatch."""
            for fixture in ("runnable", "starting", "running", ending):
                Engine.deliver(fixture, job)
            aws.run_dispatcher()
            return Engine.get(job["job_id"])

    return Engine
