"""The job index on moto: the job item is in no index; a small index item per job carries the keys,
written when the job is made and when it finishes (or is queued again), never by a progress event;
listings and the sweeper find jobs through it, and jobs whose keys an earlier layout put on the job
item read the same and move on their first read."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from batchplane.adapters.dynamo_calls import encode_token
from batchplane.adapters.earlier_layout import EARLIER_INDEX_KEYS
from batchplane.adapters.job_index import INDEX_KEYS
from batchplane.adapters.store import DynamoJobStore
from batchplane.errors import InvalidRequest
from batchplane.wiring import ports
from batchplane_tools.migrate import migrate_table
from tests.conftest import AwsStack
from tests.support import LambdaContext, api_event, load_event, load_function


def _item(aws: AwsStack, job_id: str, sk: str) -> dict[str, Any] | None:
    found = aws.client("dynamodb").get_item(
        TableName=aws.env["JOBS_TABLE_NAME"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": sk}}
    )
    return found.get("Item")


def _listed(api: Any, **query: str) -> list[list[str]]:
    """Every page of GET /jobs with `query`, as lists of job ids."""
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        status, body, _ = api(
            api_event("GET", "/jobs", query={**query, **({"next_token": token} if token else {})})
        )
        assert status == 200, body
        pages.append([job["job_id"] for job in body["jobs"]])
        token = body.get("next_token")
        if not token:
            return pages


def test_progress_events_write_the_job_item_only_and_finishing_moves_the_index_entry(
    aws: AwsStack, engine: Any
) -> None:
    # Given a job just dispatched: its index entry is in the tenant's ACTIVE partition and by_activity
    job = engine.submit("word-count")
    made = _item(aws, job["job_id"], "INDEX")
    assert made is not None
    assert made["gsi2pk"]["S"] == f"TENANT#{job['tenant']}#ACTIVE"
    assert made["gsi3pk"]["S"].startswith("ACTIVE#") and "expires_at" not in made
    assert "gsi1pk" not in made  # by_tenant is written no more: no write unit there

    # When its attempt goes RUNNABLE, STARTING and RUNNING
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, engine.get(job["job_id"]))

    # Then the index entry is the very item written with the job, and the job item holds no index key
    assert _item(aws, job["job_id"], "INDEX") == made
    job_item = _item(aws, job["job_id"], "JOB")
    assert job_item is not None and job_item["status"]["S"] == "RUNNING"
    assert not set(INDEX_KEYS) & set(job_item)

    # When it succeeds
    engine.deliver("succeeded", engine.get(job["job_id"]))

    # Then its entry moved to the SUCCEEDED partition, left by_activity and expires with the job
    done = _item(aws, job["job_id"], "INDEX")
    job_item = _item(aws, job["job_id"], "JOB")
    assert done is not None and job_item is not None
    assert done["gsi2pk"]["S"] == f"TENANT#{job['tenant']}#SUCCEEDED"
    assert "gsi3pk" not in done and "gsi3sk" not in done
    assert done["expires_at"] == job_item["expires_at"]
    assert done["gsi2sk"] == made["gsi2sk"]


def test_an_index_entry_its_finish_did_not_move_is_moved_by_the_next_sweep(
    aws: AwsStack, engine: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job that succeeded while its function died right after the job's own write
    job = engine.submit("word-count")
    with monkeypatch.context() as died:
        died.setattr(DynamoJobStore, "_reindex", lambda self, job: None)
        engine.run(engine.get(job["job_id"]), "succeeded")
    stale = _item(aws, job["job_id"], "INDEX")
    assert stale is not None and stale["gsi2pk"]["S"].endswith("#ACTIVE") and "gsi3pk" in stale

    # Then listings show it once, as it is, meanwhile
    assert _listed(api) == [[job["job_id"]]]
    assert _listed(api, status="RUNNING") == [[]]

    # When the sweeper next runs
    load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())

    # Then its entry is in the SUCCEEDED partition, out of by_activity, and expires with it
    moved = _item(aws, job["job_id"], "INDEX")
    job_item = _item(aws, job["job_id"], "JOB")
    assert moved is not None and job_item is not None
    assert moved["gsi2pk"]["S"] == f"TENANT#{job['tenant']}#SUCCEEDED" and "gsi3pk" not in moved
    assert moved["expires_at"] == job_item["expires_at"]
    assert _listed(api, status="SUCCEEDED") == [[job["job_id"]]]


def test_a_cancel_whose_entry_move_times_out_still_answers_and_terminates(
    aws: AwsStack, engine: Any, api: Any
) -> None:
    # Given a running job, and DynamoDB unreachable for the index entry's own write
    job = engine.submit("word-count")
    engine.deliver("running", engine.get(job["job_id"]))

    def unreachable(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("sk", {}).get("S") == "INDEX":
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    events = ports().store._client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.dynamodb.PutItem", unreachable)
    calls = aws.record_calls("batch")
    try:
        # When the tenant cancels it
        status, body, _ = api(
            api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel")
        )
    finally:
        events.unregister("before-parameter-build.dynamodb.PutItem", unreachable)

    # Then the cancel is answered and its Batch job terminated; the entry waits for the sweeper
    assert (status, body["status"]) == (200, "CANCELLED")
    assert [op for _, op, _ in calls] == ["TerminateJob"]
    entry = _item(aws, job["job_id"], "INDEX")
    assert entry is not None and entry["gsi2pk"]["S"].endswith("#ACTIVE")


def test_a_late_move_of_a_finished_jobs_entry_never_hides_it_after_a_manual_retry(
    aws: AwsStack, engine: Any, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job cancelled, its entry's move held back (a slow call), and then retried by hand
    job = engine.submit("word-count")
    held_back: list[Any] = []
    real_reindex = DynamoJobStore._reindex
    with monkeypatch.context() as slow:
        slow.setattr(DynamoJobStore, "_reindex", lambda self, done: held_back.append((self, done)))
        status, _, _ = api(
            api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel")
        )
        assert status == 200
    status, retried, _ = api(
        api_event("POST", f"/jobs/{job['job_id']}/retry", resource="/jobs/{job_id}/retry")
    )
    assert status in (200, 202) and retried["status"] == "QUEUED", retried

    # When the held-back move lands after the retry's write
    [(store, done)] = held_back
    real_reindex(store, done)

    # Then the entry is still the queued job's: unfinished, in by_activity, where the sweeper looks
    entry = _item(aws, job["job_id"], "INDEX")
    assert entry is not None
    assert entry["gsi2pk"]["S"].endswith("#ACTIVE") and "gsi3pk" in entry and "expires_at" not in entry


def test_a_status_filter_pages_through_exactly_the_jobs_in_that_status(
    aws: AwsStack, engine: Any, api: Any
) -> None:
    # Given seven unfinished jobs of one tenant: three RUNNING, four only dispatched, and a finished one
    jobs = [engine.submit("word-count") for _ in range(8)]
    running = [j["job_id"] for j in jobs[:3]]
    for job in jobs[:3]:
        for fixture in ("runnable", "running"):
            engine.deliver(fixture, engine.get(job["job_id"]))
    engine.run(engine.get(jobs[7]["job_id"]), "succeeded")
    submitted = [j["job_id"] for j in jobs[3:7]]

    # When the RUNNING ones are listed a page of one at a time, and the SUBMITTED ones two at a time
    by_running = _listed(api, status="RUNNING", limit="1")
    by_submitted = _listed(api, status="SUBMITTED", limit="2")

    # Then each listing holds exactly its jobs, newest first, each once, in full pages
    assert by_running == [[j] for j in reversed(running)]
    assert [j for page in by_submitted for j in page] == list(reversed(submitted))
    assert [len(page) for page in by_submitted] == [2, 2]
    assert _listed(api, status="SUCCEEDED") == [[jobs[7]["job_id"]]]
    everything = [j for page in _listed(api, limit="3") for j in page]
    assert everything == [j["job_id"] for j in reversed(jobs)]


def test_a_retry_decision_moves_the_finished_attempt_beside_the_job(aws: AwsStack, engine: Any) -> None:
    # Given a sort-large job (it starts on Spot) whose first attempt was reclaimed
    job = engine.submit("sort-large")
    for fixture in ("runnable", "running", "spot_interrupted"):
        engine.deliver(fixture, engine.get(job["job_id"]))

    # Then the job waits for its next attempt with attempt 1 beside it, and still in its item (a
    # listing, the sweeper and the "Job Retrying" event read the item alone)
    item = _item(aws, job["job_id"], "JOB")
    assert item is not None and list(item["attempts"]["M"]) == ["1"]
    assert item["beside_through"] == {"N": "1"}
    assert _item(aws, job["job_id"], "ATTEMPT#0001") is not None

    # And when attempt 2 is dispatched, the item holds attempt 2 alone while the job shows both
    aws.run_dispatcher()
    item = _item(aws, job["job_id"], "JOB")
    assert item is not None and list(item["attempts"]["M"]) == ["2"] and "beside_through" not in item
    assert [a["number"] for a in engine.get(job["job_id"])["attempts"]] == [1, 2]

    # And when attempt 2 succeeds, attempt 1 is not written beside again (it is there: 1 WRU spared)
    calls = aws.record_calls("dynamodb")
    engine.run(engine.get(job["job_id"]), "succeeded")
    written = [
        put["PutRequest"]["Item"]["sk"]["S"]
        for _, op, params in calls
        if op == "BatchWriteItem"
        for put in params["RequestItems"][aws.env["JOBS_TABLE_NAME"]]
    ]
    assert "ATTEMPT#0001" not in written and "ATTEMPT#0002" not in written
    assert [a["number"] for a in engine.get(job["job_id"])["attempts"]] == [1, 2]


def test_a_retry_decided_by_an_earlier_release_keeps_its_attempt_until_the_next_save(
    aws: AwsStack, engine: Any
) -> None:
    # Given a job waiting for attempt 2 as an earlier release left it: attempt 1 in its item only
    job = engine.submit("sort-large")
    for fixture in ("runnable", "running", "spot_interrupted"):
        engine.deliver(fixture, engine.get(job["job_id"]))
    dynamodb, table = aws.client("dynamodb"), aws.env["JOBS_TABLE_NAME"]
    item = _item(aws, job["job_id"], "JOB")
    assert item is not None
    item.pop("beside_through")
    dynamodb.put_item(TableName=table, Item=item)
    dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": {"S": "ATTEMPT#0001"}})

    # When attempt 2 is dispatched
    aws.run_dispatcher()

    # Then it is recorded, and attempt 1 stays in the item (nothing else holds it)
    item = _item(aws, job["job_id"], "JOB")
    assert item is not None and sorted(item["attempts"]["M"]) == ["1", "2"]
    assert [(a["number"], a["status"]) for a in engine.get(job["job_id"])["attempts"]] == [
        (1, "FAILED"),
        (2, "SUBMITTED"),
    ]


def test_the_sweeper_resends_a_lost_retry_as_the_attempt_it_is(
    aws: AwsStack, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job reclaimed on Spot whose retry's dispatch message (attempt 2) was lost
    job = engine.submit("sort-large")
    for fixture in ("runnable", "running", "spot_interrupted"):
        engine.deliver(fixture, engine.get(job["job_id"]))
    [lost] = aws.dispatch_messages(delete=True)
    assert json.loads(lost["Body"])["attempt"] == 2

    # When the sweeper runs once the job has been quiet long enough, and the dispatcher takes its message
    later = ports().clock() + timedelta(minutes=30)
    monkeypatch.setattr(ports(), "clock", lambda: later)
    load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())
    [again] = aws.dispatch_messages()
    aws.run_dispatcher()

    # Then it sent attempt 2 again, and attempt 2 is submitted: one Batch job per attempt
    assert json.loads(again["Body"])["attempt"] == 2
    seen = engine.get(job["job_id"])
    assert (seen["status"], [a["number"] for a in seen["attempts"]]) == ("SUBMITTED", [1, 2])
    assert len(aws.batch_jobs()) == 2


def test_a_tenants_whole_listing_merges_its_partitions_newest_first(
    aws: AwsStack, engine: Any, api: Any
) -> None:
    # Given five jobs of one tenant in three by_tenant_status partitions: succeeded, cancelled, unfinished
    jobs = [engine.submit("word-count") for _ in range(5)]
    engine.run(engine.get(jobs[0]["job_id"]), "succeeded")
    engine.run(engine.get(jobs[3]["job_id"]), "succeeded")
    status, _, _ = api(
        api_event("POST", f"/jobs/{jobs[1]['job_id']}/cancel", resource="/jobs/{job_id}/cancel")
    )
    assert status == 200
    newest_first = [j["job_id"] for j in reversed(jobs)]

    # When every job is listed, two a page
    pages = _listed(api, limit="2")

    # Then each job comes once, newest first, whatever its partition, in full pages
    assert [j for page in pages for j in page] == newest_first
    assert [len(page) for page in pages] == [2, 2, 1]


def test_a_job_whose_entry_moves_while_its_tenant_is_listed_is_listed_once(
    aws: AwsStack, engine: Any
) -> None:
    # Given three jobs of a tenant, and the middle one's entry moving to SUCCEEDED right after the
    # listing has read the ACTIVE partition (before it reads SUCCEEDED)
    jobs = [engine.submit("word-count") for _ in range(3)]
    moving = jobs[1]
    tenant = moving["tenant"]
    other = aws.client("dynamodb")  # not the store's own: its calls are not hooked
    table = aws.env["JOBS_TABLE_NAME"]

    def finish_after_active_read(params: dict[str, Any], **_: Any) -> None:
        # (the partitions are read ACTIVE first, SUCCEEDED last: this is just before the last one)
        values = params.get("ExpressionAttributeValues", {})
        partition = (values.get(":partition") or values.get(":pk") or {}).get("S")
        if partition != f"TENANT#{tenant}#SUCCEEDED" or moved:
            return
        entry = {k: v for k, v in unfinished.items() if k not in ("gsi3pk", "gsi3sk")}
        other.put_item(TableName=table, Item={**entry, "gsi2pk": {"S": f"TENANT#{tenant}#SUCCEEDED"}})
        moved.append(True)

    unfinished = _item(aws, moving["job_id"], "INDEX")
    assert unfinished is not None
    moved: list[bool] = []
    events = ports().store._client.meta.events  # type: ignore[attr-defined]
    events.register("before-parameter-build.dynamodb.Query", finish_after_active_read)
    try:
        # When every job is listed, and the summary's jobs are read
        page = ports().store.list_for_tenant(tenant, limit=10, status=None, job_type=None, next_token=None)
        other.put_item(TableName=table, Item=unfinished)  # unfinished again, to move once more
        moved.clear()
        now = ports().clock()
        found, complete = ports().store.created_between(tenant, now - timedelta(hours=1), now, most=10)
    finally:
        events.unregister("before-parameter-build.dynamodb.Query", finish_after_active_read)

    # Then each job comes once, newest first (the moved one read from both partitions is one job)
    newest_first = [j["job_id"] for j in reversed(jobs)]
    assert [j.job_id for j in page.jobs] == newest_first
    assert [j.job_id for j in found] == newest_first and complete


def test_a_token_of_the_by_tenant_listing_goes_on_where_it_stopped(aws: AwsStack, engine: Any) -> None:
    # Given three jobs, one finished, and a token as the by_tenant listing gave after the newest
    jobs = [engine.submit("word-count") for _ in range(3)]
    engine.run(engine.get(jobs[1]["job_id"]), "succeeded")
    newest = _item(aws, jobs[2]["job_id"], "INDEX")
    assert newest is not None
    tenant = jobs[2]["tenant"]
    old_token = encode_token(
        {
            "pk": newest["pk"],
            "sk": newest["sk"],
            "gsi1pk": {"S": f"TENANT#{tenant}"},
            "gsi1sk": newest["gsi2sk"],
        }
    )

    # When the listing goes on from it
    page = ports().store.list_for_tenant(tenant, limit=10, status=None, job_type=None, next_token=old_token)

    # Then it gives the two older jobs, and another tenant's listing refuses the token
    assert [j.job_id for j in page.jobs] == [jobs[1]["job_id"], jobs[0]["job_id"]]
    with pytest.raises(InvalidRequest):
        ports().store.list_for_tenant("other", limit=10, status=None, job_type=None, next_token=old_token)


def _as_second_layout(aws: AwsStack, job_id: str) -> None:
    """Rewrite a job as the second layout stored it: the index keys on the job item, no index item."""
    dynamodb, table = aws.client("dynamodb"), aws.env["JOBS_TABLE_NAME"]
    index = _item(aws, job_id, "INDEX")
    job_item = _item(aws, job_id, "JOB")
    assert index is not None and job_item is not None
    keys = {k: v for k, v in index.items() if k in INDEX_KEYS}
    keys.update(gsi1pk={"S": f"TENANT#{job_item['tenant']['S']}"}, gsi1sk=index["gsi2sk"])  # by_tenant's
    # that layout kept each status in a partition of its own
    keys["gsi2pk"] = {"S": f"TENANT#{job_item['tenant']['S']}#{job_item['status']['S']}"}
    dynamodb.put_item(TableName=table, Item={**job_item, **keys})
    dynamodb.delete_item(TableName=table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "INDEX"}})


def test_jobs_with_index_keys_on_their_item_list_and_move_to_the_index_item(
    aws: AwsStack, engine: Any, api: Any
) -> None:
    # Given two running jobs stored as the second layout did
    first, second = (engine.submit("word-count") for _ in range(2))
    for job in (first, second):
        engine.deliver("running", engine.get(job["job_id"]))
        _as_second_layout(aws, job["job_id"])

    # When one is read, and `batchplane migrate` moves the rest
    engine.get(first["job_id"])
    report = migrate_table(aws.client("dynamodb"), aws.env["JOBS_TABLE_NAME"], retention=timedelta(days=90))

    # Then the read moved the first, the migration the second; both now list by their status
    assert report.found == [second["job_id"]]
    for job in (first, second):
        job_item = _item(aws, job["job_id"], "JOB")
        assert job_item is not None and not set(EARLIER_INDEX_KEYS) & set(job_item)
        assert _item(aws, job["job_id"], "INDEX") is not None
    assert [j for page in _listed(api, status="RUNNING") for j in page] == [second["job_id"], first["job_id"]]
    assert _listed(api) == [[second["job_id"], first["job_id"]]]
