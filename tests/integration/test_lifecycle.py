"""The lifecycle engine on moto: Batch state events drive retries, fallback, memory bumps, alerts
and artifacts, through the real state-change handler and the template's resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import LambdaContext, api_event, batch_event, load_event, load_function

INPUT = "s3://batchplane-dev-ingest/incoming/sort/big.csv"


@pytest.fixture
def watch(aws):
    """SQS queues subscribed to the alert topic and to every batchplane event on the job bus."""
    sqs, sns, events = aws.client("sqs"), aws.client("sns"), aws.client("events")
    env = aws.env
    alerts_url = sqs.create_queue(QueueName="alerts-watch")["QueueUrl"]
    events_url = sqs.create_queue(QueueName="events-watch")["QueueUrl"]

    def arn(url: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    sns.subscribe(TopicArn=env["ALERT_TOPIC_ARN"], Protocol="sqs", Endpoint=arn(alerts_url))
    events.put_rule(
        Name="watch", EventBusName=env["EVENT_BUS_NAME"], EventPattern=json.dumps({"source": ["batchplane"]})
    )
    events.put_targets(
        Rule="watch", EventBusName=env["EVENT_BUS_NAME"], Targets=[{"Id": "q", "Arn": arn(events_url)}]
    )

    class Watch:
        @staticmethod
        def alerts() -> list[str]:
            messages = sqs.receive_message(QueueUrl=alerts_url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"])["Message"] for m in messages]

        @staticmethod
        def job_events() -> list[dict[str, Any]]:
            messages = sqs.receive_message(QueueUrl=events_url, MaxNumberOfMessages=10).get("Messages", [])
            return [json.loads(m["Body"]) for m in messages]

    return Watch


@pytest.fixture
def engine(aws, api):
    """Submit, dispatch and deliver Batch events, as the deployed stack would."""
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
        def deliver(fixture: str, job: dict[str, Any], attempt: int = 0) -> dict[str, Any]:
            item = aws.client("dynamodb").get_item(
                TableName=aws.env["JOBS_TABLE_NAME"],
                Key={"pk": {"S": f"JOB#{job['job_id']}"}, "sk": {"S": "JOB"}},
            )["Item"]
            raw = {
                **job,
                "attempts": [
                    {**a, "job_name": item["attempts"]["M"][str(a["number"])]["M"]["job_name"]["S"]}
                    for a in job["attempts"]
                ],
            }
            return state_change(batch_event(fixture, job=raw, attempt=attempt), LambdaContext())

        @staticmethod
        def run(job: dict[str, Any], ending: str) -> dict[str, Any]:
            """The current attempt goes RUNNABLE -> STARTING -> RUNNING -> `ending`; then dispatch."""
            for fixture in ("runnable", "starting", "running", ending):
                Engine.deliver(fixture, job)
            aws.run_dispatcher()
            return Engine.get(job["job_id"])

    return Engine


def test_success_records_output_artifacts_and_publishes_job_succeeded(aws, engine, watch) -> None:
    # Given a submitted job whose worker wrote two objects under its output prefix
    job = engine.submit()
    bucket, prefix = job["output_prefix"][5:].split("/", 1)
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=f"{prefix}sorted.csv", Body=b"a\nb\n")
    s3.put_object(Bucket=bucket, Key=f"{prefix}summary.json", Body=b"{}")

    # When the attempt runs and succeeds
    done = engine.run(job, "succeeded")

    # Then the job succeeded with its outputs recorded, and downstream automation hears of it
    assert done["status"] == "SUCCEEDED"
    outputs = {a["uri"]: a for a in done["artifacts"] if a["role"] == "output"}
    assert set(outputs) == {f"{job['output_prefix']}sorted.csv", f"{job['output_prefix']}summary.json"}
    assert outputs[f"{job['output_prefix']}sorted.csv"]["size"] == 4
    assert outputs[f"{job['output_prefix']}sorted.csv"]["etag"]
    [attempt] = done["attempts"]
    assert (attempt["status"], attempt["failure_class"], attempt["exit_code"]) == ("SUCCEEDED", None, 0)
    assert attempt["started_at"] and attempt["stopped_at"] and attempt["log_stream"]
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Succeeded"]
    assert watch.alerts() == []


def test_spot_reclaim_falls_back_to_on_demand_and_keeps_the_application_budget(aws, engine, watch) -> None:
    # Given a Spot-first job type whose application errors are not retried at all
    job = engine.submit()
    assert job["attempts"][0]["capacity"] == "SPOT"

    # When its Spot host is reclaimed
    job = engine.run(job, "spot_interrupted")

    # Then it is retried at once on on-demand, with the reason recorded
    assert job["status"] == "SUBMITTED"
    first, second = job["attempts"]
    assert first["failure_class"] == "SPOT_INTERRUPTED"
    assert second["capacity"] == "ON_DEMAND"
    assert second["queue"] == aws.env["ON_DEMAND_JOB_QUEUE"]
    reasons = [h["reason"] for h in job["history"] if h["event"] == "retried"]
    assert reasons == [
        "attempt 1 reclaimed on Spot (Host EC2 (instance i-0abc1234def567890) terminated.); "
        "retrying on ON_DEMAND in 0 s"
    ]
    assert "fell_back" in [h["event"] for h in job["history"]]
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Retrying"]

    # When the on-demand attempt then succeeds, Then the job succeeds
    assert engine.run(job, "succeeded")["status"] == "SUCCEEDED"


def test_out_of_memory_is_retried_with_doubled_memory(aws, engine) -> None:
    job = engine.submit(memory_mib=1024)
    calls = aws.record_calls("batch")

    job = engine.run(job, "out_of_memory")

    first, second = job["attempts"]
    assert first["failure_class"] == "OUT_OF_MEMORY"
    assert first["exit_code"] == 137
    assert first["status_reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert second["memory_mib"] == 2048
    [submit] = [p for _, op, p in calls if op == "SubmitJob"]
    assert {"type": "MEMORY", "value": "2048"} in submit["containerOverrides"]["resourceRequirements"]
    [retried] = [h["reason"] for h in job["history"] if h["event"] == "retried"]
    assert retried.endswith("retrying on SPOT with 2048 MiB in 0 s")


def test_memory_bump_stops_at_the_job_types_maximum_and_then_gives_up(aws, engine, watch) -> None:
    job = engine.submit(memory_mib=6000)

    job = engine.run(job, "out_of_memory")
    assert job["attempts"][-1]["memory_mib"] == 8192
    job = engine.run(job, "out_of_memory")

    assert job["status"] == "FAILED"
    assert "already at the maximum 8192 MiB" in job["history"][-1]["reason"]
    [alert] = watch.alerts()
    assert (
        job["job_id"] in alert and "OUT_OF_MEMORY" in alert and "sort-large" in alert and "analytics" in alert
    )


def test_application_error_not_retryable_fails_the_job_with_one_alert(aws, engine, watch) -> None:
    # Given sort-large retries no application errors
    job = engine.submit()

    # When its attempt exits 1
    job = engine.run(job, "application_error")

    # Then the job failed for good, and exactly one alert and one "Job Failed" event say why
    assert job["status"] == "FAILED"
    assert job["attempts"][0]["failure_class"] == "APPLICATION"
    alerts = watch.alerts()
    assert len(alerts) == 1
    assert "exit code 1" in alerts[0]
    assert "last log stream: batchplane-dev" in alerts[0]
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Failed"]
    assert aws.dispatch_messages() == []


def test_application_error_with_a_retryable_exit_code_is_retried_with_backoff(
    aws, engine, monkeypatch
) -> None:
    # Given checksum-manifest retries exit codes 1 and 75, with a backoff
    job = engine.submit("checksum-manifest")
    sent: list[int] = []
    from batchplane.wiring import ports

    real_send = ports().dispatch.send
    monkeypatch.setattr(
        ports().dispatch, "send", lambda m, delay_seconds=0: (sent.append(delay_seconds), real_send(m, 0))
    )

    job = engine.run(job, "application_error")

    assert job["attempts"][0]["failure_class"] == "APPLICATION"
    assert len(job["attempts"]) == 2
    assert 0 <= sent[0] <= 30  # full jitter under base 30 s for the first retry


def test_duplicate_terminal_event_makes_one_decision(aws, engine, watch) -> None:
    job = engine.submit()
    for fixture in ("runnable", "running"):
        engine.deliver(fixture, job)

    first = engine.deliver("spot_interrupted", job)
    second = engine.deliver("spot_interrupted", job)

    assert first["outcome"] == "retrying"
    assert second["outcome"] == "duplicate"
    assert len(aws.dispatch_messages(delete=True)) == 1
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Retrying"]


def test_stale_non_terminal_event_changes_nothing_and_reads_nothing(aws, engine) -> None:
    job = engine.submit()
    engine.deliver("running", job)
    calls = aws.record_calls("dynamodb")

    outcome = engine.deliver("runnable", job)

    assert outcome["outcome"] == "stale"
    assert [op for _, op, _ in calls] == ["UpdateItem"]
    assert engine.get(job["job_id"])["status"] == "RUNNING"


def test_event_of_an_older_attempt_never_moves_the_job(aws, engine) -> None:
    job = engine.submit()
    job = engine.run(job, "spot_interrupted")
    assert len(job["attempts"]) == 2

    outcome = engine.deliver("running", job, attempt=1)

    assert outcome["outcome"] == "stale"
    assert engine.get(job["job_id"])["status"] == "SUBMITTED"


def test_event_for_a_batch_job_batchplane_does_not_know_is_ignored(aws) -> None:
    result = load_function("state_change").handler(load_event("batch/foreign_job.json"), LambdaContext())

    assert result["outcome"] == "ignored"
    assert aws.table_items() == []


def test_cancelled_job_records_its_attempts_end_but_is_never_retried(aws, engine, api, watch) -> None:
    job = engine.submit()
    engine.deliver("running", job)
    api(api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel"))

    outcome = engine.deliver("cancelled", job)

    assert outcome["outcome"] == "recorded"
    stored = engine.get(job["job_id"])
    assert stored["status"] == "CANCELLED"
    assert stored["attempts"][0]["failure_class"] == "CANCELLED"
    assert aws.dispatch_messages() == []
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Cancelled"]
