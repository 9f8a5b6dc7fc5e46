"""The lifecycle engine on moto: Batch state events drive retries, fallback, memory bumps, alerts
and artifacts, through the real state-change handler and the template's resources (fixtures in
conftest.py: `engine` delivers each write's owed events through the outbox, as the stack does)."""

from __future__ import annotations

from tests.support import LambdaContext, api_event, load_event, load_function


def test_success_records_output_artifacts_and_publishes_job_succeeded(aws, engine, watch) -> None:
    # Given a submitted job whose attempt's worker wrote two objects under its attempt's prefix,
    # and S3 reported each (Object Created, as the artifact bucket sends it to EventBridge)
    job = engine.submit()
    bucket, prefix = f"{job['output_prefix']}attempt-1/"[5:].split("/", 1)
    s3 = aws.client("s3")
    for name, body in (("sorted.csv", b"a\nb\n"), ("summary.json", b"{}")):
        written = s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body)
        event = load_event("s3/eventbridge_output_created.json")
        event["detail"]["bucket"]["name"] = bucket
        event["detail"]["object"].update(
            key=f"{prefix}{name}",
            size=len(body),
            etag=written["ETag"].strip('"'),
            **{"version-id": written["VersionId"]},
        )
        load_function("artifacts").handler(event, LambdaContext(function_name="artifacts"))

    # When the attempt runs and succeeds
    done = engine.run(job, "succeeded")

    # Then the job succeeded with its outputs recorded as attempt 1's, and downstream automation hears of it
    assert done["status"] == "SUCCEEDED"
    outputs = {a["uri"]: a for a in done["artifacts"] if a["role"] == "output"}
    attempt_prefix = f"{job['output_prefix']}attempt-1/"
    assert set(outputs) == {f"{attempt_prefix}sorted.csv", f"{attempt_prefix}summary.json"}
    assert outputs[f"{attempt_prefix}sorted.csv"]["size"] == 4
    assert outputs[f"{attempt_prefix}sorted.csv"]["etag"]
    assert outputs[f"{attempt_prefix}sorted.csv"]["version_id"]
    assert {a["attempt"] for a in outputs.values()} == {1}
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
