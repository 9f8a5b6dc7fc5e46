"""Held, not dropped: file drops over their tenant's in-flight limit become HELD jobs on moto, and are
released oldest first, through the dispatch path, as the tenant's slots free."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.waiting import QueueFront
from batchplane.policy.routing import Route
from batchplane.service import held
from batchplane.service.ports import BatchJobRef
from batchplane.wiring import ports
from batchplane_tools.local.moto_speedups import (
    dump_stream_records,
    query_one_partition,
    stop_instance_tracking,
)
from tests.support import LambdaContext, api_event, load_event, load_function, s3_notification, sqs_event

TENANT = "analytics"
LIMIT = 100  # sort-large's max_in_flight_per_tenant in layers/core/policy.yaml
DROPS = int(os.environ.get("HELD_TEST_DROPS", "1000"))


@dataclass
class FinishingBatch:
    """AWS Batch as far as batchplane calls it: every job submitted runs until `finish` ends it."""

    running: dict[str, dict[str, Any]] = field(default_factory=dict)
    submitted: int = 0
    most_at_once: int = 0

    def submit(
        self,
        *,
        name: str,
        route: Route,
        parameters: dict[str, str],
        environment: dict[str, str],
        tags: dict[str, str],
    ) -> str:
        batch_job_id = str(uuid.uuid4())
        self.running[batch_job_id] = {"name": name, "queue": route.queue, "tags": tags}
        self.submitted += 1
        self.most_at_once = max(self.most_at_once, len(self.running))
        return batch_job_id

    def find_by_name(self, queue: str, name: str) -> list[BatchJobRef]:
        return [BatchJobRef(i, "RUNNING") for i, j in self.running.items() if j["name"] == name]

    def terminate(self, batch_job_id: str, reason: str) -> None:
        self.running.pop(batch_job_id, None)

    def describe(self, batch_job_ids: list[str]) -> list[BatchJobDetail]:
        """As the dispatcher recorded them: SUBMITTED (the sweeper then has nothing to write)."""
        return [
            BatchJobDetail.model_validate(
                self._event("running", i, self.running[i])["detail"] | {"status": "SUBMITTED"}
            )
            for i in batch_job_ids
            if i in self.running
        ]

    def front_of_queue(self, queue: str) -> QueueFront | None:
        return None  # no snapshot of the queue: the sweeper keeps none

    def finish(self, count: int) -> list[dict[str, Any]]:
        """End `count` running jobs: the "Batch Job State Change" events SUCCEEDED each sends."""
        return [self._event("succeeded", i, self.running.pop(i)) for i in list(self.running)[:count]]

    @staticmethod
    def _event(fixture: str, batch_job_id: str, job: dict[str, Any]) -> dict[str, Any]:
        event = load_event(f"batch/{fixture}.json")
        arn = f"arn:aws:batch:us-east-1:123456789012:job/{batch_job_id}"
        event["detail"].update(
            jobId=batch_job_id, jobArn=arn, jobName=job["name"], jobQueue=job["queue"], tags=job["tags"]
        )
        event["resources"] = [arn]
        return event


@pytest.fixture
def fast_moto(aws, monkeypatch) -> None:
    """Thousands of items and stream records: moto as the local stack runs it (moto_speedups.py),
    its per-Query sort of the whole table and per-record serializer taken out, for this test only."""
    from moto.dynamodb.models.table import Table
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for owner, name in ((Table, "query"), (Table, "all_items"), (DynamoDBStreamsHandler, "get_records")):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    query_one_partition()
    dump_stream_records()
    stop_instance_tracking()  # moto's reset at the end puts its lists back


@pytest.fixture
def batch(aws, monkeypatch) -> FinishingBatch:
    fake = FinishingBatch()
    monkeypatch.setattr(ports(), "batch", fake)
    return fake


@pytest.fixture
def drop(aws):
    """Deliver S3 notifications through the ingest queue's SQS event, ten a batch as the template's."""
    handler = load_function("file_drop").handler

    def deliver(*notifications: dict[str, Any], receive_count: int = 1) -> list[dict[str, Any]]:
        failures = []
        for start in range(0, len(notifications), 10):
            chunk = notifications[start : start + 10]
            bodies = [(f"m{start + i}", json.dumps(n), receive_count) for i, n in enumerate(chunk)]
            failures.extend(handler(sqs_event(bodies), LambdaContext())["batchItemFailures"])
        return failures

    return deliver


def sort_drop(aws, n: int, **fields: Any) -> dict[str, Any]:
    """The notification of object n dropped under the tenant's sort/ prefix (a sort-large job)."""
    given = {"versionId": f"v{n}", "sequencer": f"0069{n:014X}", **fields}
    return s3_notification(
        bucket=aws.env["INGEST_BUCKET"], key=f"incoming/{TENANT}/sort/part-{n:04d}.csv", **given
    )


def quota(aws) -> tuple[int, int]:
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=aws.env["JOBS_TABLE_NAME"],
            Key={"pk": {"S": f"TENANT#{TENANT}"}, "sk": {"S": "INFLIGHT#sort-large"}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return int(item.get("in_flight", {}).get("N", "0")), int(item.get("held", {}).get("N", "0"))


def jobs(aws) -> list[dict[str, Any]]:
    items = aws.client("dynamodb").get_paginator("scan").paginate(TableName=aws.env["JOBS_TABLE_NAME"])
    return [
        i
        for page in items
        for i in page["Items"]
        if i["pk"]["S"].startswith("JOB#") and i["sk"]["S"] == "JOB"
    ]


def statuses(aws) -> dict[str, str]:
    return {i["parameters"]["M"]["input"]["S"].rsplit("/", 1)[1]: i["status"]["S"] for i in jobs(aws)}


def ingest_dlq_depth(aws) -> int:
    url = aws.stack.refs["IngestDLQ"]
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def finish(aws, batch: FinishingBatch, count: int) -> None:
    """`count` running jobs succeed: their events through the state-change function, their writes
    through the table's stream to the outbox function, which releases held jobs into the slots."""
    state_change = load_function("state_change").handler
    for event in batch.finish(count):
        state_change(event, LambdaContext())
    aws.outbox.drain()


def test_drops_over_the_limit_are_held_not_failed(aws, batch, drop) -> None:
    # Given the tenant's 100 sort-large slots taken by 100 drops
    assert drop(*(sort_drop(aws, n) for n in range(LIMIT))) == []

    # When two more files are dropped
    failures = drop(sort_drop(aws, 100), sort_drop(aws, 101))

    # Then no record fails (nothing is retried or dead-lettered): both are jobs, HELD, not dispatched
    assert failures == []
    assert ingest_dlq_depth(aws) == 0
    by_file = statuses(aws)
    assert by_file["part-0100.csv"] == by_file["part-0101.csv"] == "HELD"
    assert quota(aws) == (LIMIT, 2)
    assert len(aws.dispatch_messages(delete=True)) == LIMIT
    [held_job] = [j for j in jobs(aws) if j["parameters"]["M"]["input"]["S"].endswith("part-0100.csv")]
    assert held_job["held_reason"]["S"] == "in-flight limit 100 of sort-large reached"


def test_a_freed_slot_releases_the_oldest_held_job_through_dispatch(aws, batch, drop) -> None:
    # Given a full tenant and two held drops
    drop(*(sort_drop(aws, n) for n in range(LIMIT + 2)))
    aws.run_dispatcher()

    # When one running job succeeds
    finish(aws, batch, 1)

    # Then the older held job is QUEUED with its dispatch message, the younger still HELD
    by_file = statuses(aws)
    assert by_file["part-0100.csv"] == "QUEUED"
    assert by_file["part-0101.csv"] == "HELD"
    assert quota(aws) == (LIMIT, 1)
    aws.run_dispatcher()
    assert statuses(aws)["part-0100.csv"] == "SUBMITTED"
    assert batch.submitted == LIMIT + 1


def test_a_new_drop_queues_behind_held_ones_even_when_a_slot_is_free(aws, batch, drop, monkeypatch) -> None:
    # Given held drops, and a slot freed whose release was lost (the outbox never ran)
    drop(*(sort_drop(aws, n) for n in range(LIMIT + 1)))
    aws.run_dispatcher()
    state_change = load_function("state_change").handler
    [event] = batch.finish(1)
    state_change(event, LambdaContext())
    assert quota(aws) == (LIMIT - 1, 1)

    # When a new file is dropped
    drop(sort_drop(aws, 200))

    # Then it is held behind the older one, not admitted ahead of it
    assert statuses(aws)["part-0200.csv"] == "HELD"
    # and the sweeper, finding the held jobs quiet, releases the oldest into the free slot
    later = ports().clock() + ports().stale_after + timedelta(seconds=1)
    monkeypatch.setattr(ports(), "clock", lambda: later)
    report = load_function("sweeper").handler({}, LambdaContext())
    assert report["released"] == 1
    by_file = statuses(aws)
    assert (by_file["part-0100.csv"], by_file["part-0200.csv"]) == ("QUEUED", "HELD")
    assert quota(aws) == (LIMIT, 1)


def test_a_held_job_cancelled_is_never_released(aws, batch, drop, api) -> None:
    # Given a full tenant and one held drop
    drop(*(sort_drop(aws, n) for n in range(LIMIT + 1)))
    aws.run_dispatcher()
    [held_job] = [j for j in jobs(aws) if j["status"]["S"] == "HELD"]
    job_id = held_job["pk"]["S"].removeprefix("JOB#")

    # When the tenant cancels it, and then a slot frees
    status, body, _ = api(api_event("POST", f"/jobs/{job_id}/cancel", resource="/jobs/{job_id}/cancel"))
    finish(aws, batch, 1)

    # Then it stays CANCELLED, took no slot and was never dispatched
    assert (status, body["status"]) == (200, "CANCELLED")
    assert statuses(aws)["part-0100.csv"] == "CANCELLED"
    assert quota(aws) == (LIMIT - 1, 0)
    assert aws.dispatch_messages() == []


def test_a_duplicate_event_of_a_held_drop_makes_no_second_job(aws, batch, drop) -> None:
    drop(*(sort_drop(aws, n) for n in range(LIMIT + 1)))

    # When S3's event of the held drop is delivered again, and an older one of its key arrives late
    failures = drop(sort_drop(aws, 100), receive_count=2)
    drop(sort_drop(aws, 100, versionId="v0", sequencer="0069000000000000000001"))

    # Then there is still one job for it, HELD once
    assert failures == []
    assert len(jobs(aws)) == LIMIT + 1
    assert quota(aws) == (LIMIT, 1)


def test_releases_racing_each_other_admit_once(aws, batch, drop) -> None:
    # Given one free slot and two held jobs
    drop(*(sort_drop(aws, n) for n in range(LIMIT + 2)))
    aws.run_dispatcher()
    state_change = load_function("state_change").handler
    [event] = batch.finish(1)
    state_change(event, LambdaContext())

    # When two releasers read the same held job and both try to release it
    store = ports().store
    first, second = held._release(ports(), store.oldest_held(TENANT, "sort-large", 1)[0], LIMIT), None
    second = held._release(ports(), first.job_id, LIMIT) if first else None
    # and a third releaser, for the next held job, finds no slot left
    third = held.release_held(ports(), TENANT, "sort-large")

    # Then the job was released once, one dispatch message, and the limit held
    assert first is not None and second is None and third == []
    assert quota(aws) == (LIMIT, 1)
    assert len(aws.dispatch_messages(delete=True)) == 1


def test_rest_keeps_its_429_unless_the_caller_asks_to_be_held(aws, api, batch, drop) -> None:
    drop(*(sort_drop(aws, n) for n in range(LIMIT)))
    body = {
        "job_type": "sort-large",
        "parameters": {"input": f"s3://{aws.env['INGEST_BUCKET']}/incoming/{TENANT}/x.csv"},
    }
    headers = {"Content-Type": "application/json"}

    refused = api(api_event("POST", "/jobs", body=body, headers=headers))
    held_status, held_job, _ = api(
        api_event("POST", "/jobs", body={**body, "when_over_limit": "hold"}, headers=headers)
    )

    assert refused[0] == 429
    assert (held_status, held_job["status"]) == (202, "HELD")
    assert held_job["held_reason"] == "in-flight limit 100 of sort-large reached"
    assert held_job["attempts"] == []
    # and behind the held job, a plain request is refused too, naming why
    again = api(api_event("POST", "/jobs", body=body, headers=headers))
    assert again[0] == 429
    assert "held ahead" in again[1]["error"]["details"][0]["reason"]


def test_a_thousand_drops_against_a_limit_of_100_all_finish_never_over_100(
    aws, fast_moto, batch, drop
) -> None:
    # Given 1,000 files dropped at once against a limit of 100 sort-large jobs in flight
    assert drop(*(sort_drop(aws, n) for n in range(DROPS))) == []
    assert quota(aws) == (LIMIT, DROPS - LIMIT)

    # When Batch runs what is dispatched and finishes some of it, round after round
    most_in_flight = 0
    for _ in range(1000):
        aws.run_dispatcher()
        if not batch.running:
            break
        most_in_flight = max(most_in_flight, quota(aws)[0])
        finish(aws, batch, 37)

    # Then 1,000 jobs were made, each submitted once, never more than 100 in flight, all finished
    assert batch.most_at_once == LIMIT and most_in_flight <= LIMIT
    assert batch.submitted == DROPS
    final = statuses(aws)
    assert len(final) == DROPS and set(final.values()) == {"SUCCEEDED"}
    assert quota(aws) == (0, 0)
    assert ingest_dlq_depth(aws) == 0
