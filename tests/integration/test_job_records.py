"""The books at scale: a job's item stays a few KB however many attempts, decisions and outputs it
has; every attempt, decision and artifact is still there, page by page, and lineage works both ways."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchplane.adapters.job_items import HISTORY_INLINE, job_key
from batchplane.lifecycle.attempts import apply_decision
from batchplane.models.job import (
    Artifact,
    ArtifactRole,
    Attempt,
    AttemptStatus,
    Capacity,
    FailureClass,
    Job,
    JobStatus,
)
from batchplane.policy.retry import Retry
from batchplane.wiring import ports
from tests.conftest import AwsStack
from tests.support import api_event, get_job, submit_job, tenant_input

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _item_bytes(aws: AwsStack, job_id: str) -> int:
    """The job item's size as DynamoDB counts it (names + values), near enough: its JSON length."""
    import json

    item = aws.client("dynamodb").get_item(TableName=aws.env["JOBS_TABLE_NAME"], Key=job_key(job_id))["Item"]
    return len(json.dumps(item, separators=(",", ":")))


def _submitted(job: Job, number: int, at: datetime) -> Attempt:
    return Attempt(
        number=number,
        batch_job_id=f"batch-{number:04d}-0000-0000-0000-000000000000",
        job_name=f"bp-{job.job_id}-{number}",
        queue="arn:aws:batch:us-east-1:123456789012:job-queue/batchplane-test-spot",
        job_definition="arn:aws:batch:us-east-1:123456789012:job-definition/batchplane-test-word-count:1",
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=512,
        submitted_at=at,
    )


def _retry_cycle(job_id: str, number: int, at: datetime) -> None:
    """Attempt `number` is submitted, reclaimed on Spot, and a retry decided: what dispatch and the
    state-change path write, through the store."""
    from batchplane.models.job import HistoryEntry

    store = ports().store
    job = store.get(job_id)
    assert job is not None
    attempt = _submitted(job, number, at)
    entry = HistoryEntry(at=at, event="submitted", reason=f"attempt {number} submitted")
    assert store.record_submission(job_id, job.tenant, attempt, entry)
    before = store.get(job_id)
    assert before is not None
    ended = attempt.model_copy(
        update={
            "status": AttemptStatus.FAILED,
            "status_reason": "Host EC2 (instance i-0abc) terminated.",
            "failure_class": FailureClass.SPOT_INTERRUPTED,
            "stopped_at": at + timedelta(minutes=5),
        }
    )
    with_end = before.model_copy(update={"attempts": [*before.attempts[:-1], ended]})
    retry = Retry(delay_seconds=0, capacity=Capacity.SPOT, memory_mib=512, fell_back=False, reason="retrying")
    store.save(apply_decision(with_end, retry, at + timedelta(minutes=5)), previous=before)


def test_a_job_retried_20_times_keeps_a_small_item_and_its_whole_record(aws: AwsStack, api: Any) -> None:
    # Given a job
    job = submit_job(api, "word-count", tenant_input("in.txt"))
    small = _item_bytes(aws, job["job_id"])

    # When 20 attempts are submitted, reclaimed and retried
    for number in range(1, 21):
        _retry_cycle(job["job_id"], number, T0 + timedelta(minutes=10 * number))

    # Then the job item stays a few KB
    assert _item_bytes(aws, job["job_id"]) < 4096, _item_bytes(aws, job["job_id"])
    assert small < 2048

    # And GET /jobs/{id} still shows every attempt and every decision, in order
    seen = get_job(api, job["job_id"])
    assert [a["number"] for a in seen["attempts"]] == list(range(1, 21))
    assert all(a["failure_class"] == "SPOT_INTERRUPTED" for a in seen["attempts"])
    events = [h["event"] for h in seen["history"]]
    assert events == ["admitted", *["submitted", "retried"] * 20]
    assert len(events) > HISTORY_INLINE


# 100,000 outputs take ~6 minutes on moto (its Query sorts the whole partition on every page);
# CI records 10,000, which exercises the same items and pages. BATCHPLANE_OUTPUTS=100000 runs the
# issue's figure (run by hand for the note: the job item does not grow by a byte either way).
OUTPUTS = int(os.environ.get("BATCHPLANE_OUTPUTS", "10000"))


def test_a_job_with_many_outputs_keeps_a_small_item_and_pages_through_them(
    aws: AwsStack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose attempt 1 wrote OUTPUTS (10,000; 100,000 by hand) objects with long keys
    job = submit_job(api, "word-count", tenant_input("in.txt"))
    prefix = f"{job['output_prefix']}attempt-1/"
    outputs = [
        Artifact(
            uri=f"{prefix}{'deep/' * 20}part-{n:06d}.csv",
            role=ArtifactRole.OUTPUT,
            size=n,
            etag=f"{n:032x}",
            version_id=f"v{n}",
            attempt=1,
        )
        for n in range(OUTPUTS)
    ]
    before = _item_bytes(aws, job["job_id"])
    # moto appends every write to the table's stream record by record, which makes 200,000 item
    # writes take minutes; this test is about the items, so the stream (the outbox's) is off here.
    # (moto's UpdateTable cannot turn a stream off: its table is told directly.)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[aws.env["JOBS_TABLE_NAME"]]
    monkeypatch.setattr(table, "stream_shard", None)

    # When they are recorded
    started = time.monotonic()
    ports().store.record_artifacts(job["job_id"], "analytics", outputs, T0)
    print(f"recorded {OUTPUTS:,} outputs in {time.monotonic() - started:.1f} s")

    # Then the job item did not grow at all
    assert _item_bytes(aws, job["job_id"]) == before

    # And GET /jobs/{id} shows the first ones and says there are more
    seen = get_job(api, job["job_id"])
    outputs_seen = [a for a in seen["artifacts"] if a["role"] == "output"]
    assert len(outputs_seen) == 20 and seen["more_artifacts"] is True
    assert outputs_seen[0] == {
        "uri": outputs[0].uri,
        "size": 0,
        "etag": f"{0:032x}",
        "version_id": "v0",
        "role": "output",
        "attempt": 1,
    }

    # And GET /jobs/{id}/artifacts pages through all of them, each once
    uris: list[str] = []
    token: str | None = None
    while True:
        query = {"limit": "1000", **({"next_token": token} if token else {})}
        status, page, _ = api(
            api_event(
                "GET", f"/jobs/{job['job_id']}/artifacts", query=query, resource="/jobs/{job_id}/artifacts"
            )
        )
        assert status == 200, page
        uris.extend(a["uri"] for a in page["artifacts"])
        token = page["next_token"]
        if not token:
            break
    assert sorted(uris) == sorted(a.uri for a in outputs)


def test_lineage_answers_which_of_the_callers_jobs_read_or_wrote_an_object(aws: AwsStack, api: Any) -> None:
    # Given tenant analytics's job that read an object and wrote another
    source = tenant_input("in.txt")
    job = submit_job(api, "word-count", source, inputs=[{"uri": source}])
    written = f"{job['output_prefix']}attempt-1/counts.json"
    ports().store.record_artifacts(
        job["job_id"], "analytics", [Artifact(uri=written, role=ArtifactRole.OUTPUT, size=9, attempt=1)], T0
    )

    def uses(uri: str, tenant: str) -> tuple[int, Any]:
        status, body, _ = api(api_event("GET", "/artifacts", query={"uri": uri}, tenant=tenant))
        return status, body

    # When the owner asks about each object
    # Then the input was read by the job (every attempt: 0), the output written by attempt 1
    status, read = uses(source, "analytics")
    assert status == 200, read
    assert [(u["job_id"], u["attempt"], u["role"]) for u in read["uses"]] == [(job["job_id"], 0, "input")]
    _, wrote = uses(written, "analytics")
    assert [(u["job_id"], u["attempt"], u["role"]) for u in wrote["uses"]] == [(job["job_id"], 1, "output")]

    # And another tenant asking about the same objects learns nothing
    for uri in (source, written):
        status, body = uses(uri, "intruder")
        assert (status, body["uses"]) == (200, [])


def test_a_finished_job_and_its_records_expire_after_the_retention(aws: AwsStack, api: Any) -> None:
    # Given a job that failed for good
    job = submit_job(api, "word-count", tenant_input("in.txt"))
    _retry_cycle(job["job_id"], 1, T0)
    _retry_cycle(job["job_id"], 2, T0)
    store = ports().store
    current = store.get(job["job_id"])
    assert current is not None
    failed = current.model_copy(update={"status": JobStatus.FAILED, "updated_at": T0 + timedelta(hours=1)})
    store.save(failed, previous=current)

    # Then the job item expires the retention after it finished, and its earlier attempt the
    # retention after it was written beside it
    items = aws.client("dynamodb").query(
        TableName=aws.env["JOBS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job['job_id']}"}},
    )["Items"]
    by_sort_key = {i["sk"]["S"]: i for i in items}
    retention = store.retention  # type: ignore[attr-defined]
    assert int(by_sort_key["JOB"]["expires_at"]["N"]) == int(
        (T0 + timedelta(hours=1) + retention).timestamp()
    )
    assert "expires_at" in by_sort_key["ATTEMPT#0001"]
