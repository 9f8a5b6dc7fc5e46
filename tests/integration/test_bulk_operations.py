"""Bulk cancel and bulk retry by filter on moto, through the API handler: a dry run counts and writes
nothing; only the caller's matching jobs are changed; a repeat with the same Idempotency-Key changes
nothing and answers the same; a retry over the in-flight limit reports the jobs it left; a large
selection goes on page by page; a call cut short is finished by its repeat and retries nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchplane.wiring import ports
from tests.support import api_event, submit_job, tenant_input

WORDS = tenant_input("word-count/notes.txt")
THEIR_WORDS = tenant_input("word-count/notes.txt", tenant="finance")


def bulk(
    api: Any,
    action: str,
    body: dict[str, Any],
    *,
    key: str | None = "op-1",
    tenant: str = "analytics",
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return api(api_event("POST", f"/bulk/{action}", body=body, headers=headers, tenant=tenant))  # type: ignore[no-any-return]


def statuses(api: Any, tenant: str = "analytics") -> dict[str, str]:
    _, page, _ = api(api_event("GET", "/jobs", query={"limit": "100"}, tenant=tenant))
    return {job["job_id"]: job["status"] for job in page["jobs"]}


def words(api: Any, n: int, tenant: str = "analytics") -> list[str]:
    uri = WORDS if tenant == "analytics" else THEIR_WORDS
    return [
        api(
            api_event(
                "POST",
                "/jobs",
                body={"job_type": "word-count", "parameters": {"input": uri}},
                headers={"Content-Type": "application/json"},
                tenant=tenant,
            )
        )[1]["job_id"]
        for _ in range(n)
    ]


def test_dry_run_counts_the_matching_jobs_and_writes_nothing(aws, api) -> None:
    # Given three word-count jobs and one sort-large job, all QUEUED
    mine = words(api, 3)
    submit_job(api, "sort-large", tenant_input("sort/big.csv"))
    before, messages = aws.table_items(), len(aws.dispatch_messages())
    calls = aws.record_calls("batch", "sqs")

    # When a dry run of a cancel of the word-count jobs is sent (with or without a key)
    for key in (None, "dry"):
        status, answer, _ = bulk(
            api, "cancel", {"filter": {"job_type": "word-count"}, "dry_run": True}, key=key
        )

        # Then it names the three, oldest first, and counts them as matched
        assert status == 200, answer
        assert answer["dry_run"] is True
        assert answer["counts"]["matched"] == 3
        assert answer["counts"]["cancelled"] == 0
        assert [j["job_id"] for j in answer["jobs"]] == mine
        assert answer["next_token"] is None
    # and nothing was written, sent or asked of Batch
    assert aws.table_items() == before
    assert len(aws.dispatch_messages()) == messages
    assert calls == []


def test_bulk_cancel_changes_only_the_callers_matching_jobs(aws, api, engine) -> None:
    # Given analytics's word-count jobs, one of them running in Batch, a sort-large job,
    # and finance's identical word-count jobs
    running = engine.submit("word-count", parameters={"input": WORDS})
    engine.deliver("running", running)
    queued = words(api, 2)
    other_type = submit_job(api, "sort-large", tenant_input("sort/big.csv"))["job_id"]
    theirs = words(api, 2, tenant="finance")
    terminated = aws.record_calls("batch")

    # When analytics cancels its unfinished word-count jobs
    status, answer, headers = bulk(api, "cancel", {"filter": {"job_type": "word-count"}})

    # Then exactly its three word-count jobs are cancelled, the running one's Batch job terminated
    assert status == 200, answer
    assert answer["counts"]["cancelled"] == 3
    assert {j["job_id"] for j in answer["jobs"]} == {*queued, running["job_id"]}
    assert "Idempotent-Replayed" not in headers
    now = statuses(api)
    assert {now[job_id] for job_id in (*queued, running["job_id"])} == {"CANCELLED"}
    assert now[other_type] == "QUEUED"
    assert [(op, p["jobId"]) for _, op, p in terminated if op == "TerminateJob"] == [
        ("TerminateJob", running["attempts"][0]["batch_job_id"])
    ]
    # and finance's identical jobs are untouched
    assert set(statuses(api, "finance").values()) == {"QUEUED"}
    assert set(statuses(api, "finance")) == set(theirs)


def test_repeat_with_the_same_key_changes_nothing_and_answers_the_same(aws, api) -> None:
    # Given a bulk cancel that was answered
    words(api, 2)
    _, first, _ = bulk(api, "cancel", {"filter": {"status": ["QUEUED"]}})
    before = aws.table_items()
    words(api, 1)  # a job created after the operation began is not its
    after_new = aws.table_items()

    # When the same call is sent again with the same key
    status, again, headers = bulk(api, "cancel", {"filter": {"status": ["QUEUED"]}})

    # Then it answers the same, says so, and writes nothing
    assert status == 200
    assert again == first
    assert headers["Idempotent-Replayed"] == "true"
    assert aws.table_items() == after_new
    assert len(after_new) > len(before)
    # and the same key with another body is a conflict, which writes nothing either
    status, conflict, _ = bulk(api, "cancel", {"filter": {"status": ["RUNNING"]}})
    assert status == 409
    assert conflict["error"]["code"] == "idempotency_conflict"
    assert conflict["error"]["details"][0]["field"] == "Idempotency-Key"
    assert aws.table_items() == after_new


def test_bulk_retry_over_the_in_flight_limit_reports_the_jobs_it_left(aws, api, monkeypatch) -> None:
    # Given four cancelled word-count jobs and a policy that allows two in flight
    jobs = words(api, 4)
    bulk(api, "cancel", {"filter": {}}, key="cancel-all")
    limited = ports().policy.model_copy(deep=True)
    object.__setattr__(limited.job_types["word-count"].admission, "max_in_flight_per_tenant", 2)
    monkeypatch.setattr(ports(), "policy", limited)
    aws.dispatch_messages(delete=True)

    # When they are retried in bulk
    status, answer, _ = bulk(api, "retry", {"filter": {"status": ["CANCELLED"]}}, key="retry-all")

    # Then the two oldest are queued again (each with its dispatch message), the other two are
    # reported over the limit and stay CANCELLED
    assert status == 200, answer
    outcomes = {j["job_id"]: j["outcome"] for j in answer["jobs"]}
    assert outcomes == dict(zip(jobs, ["retried", "retried", "over_limit", "over_limit"], strict=True))
    assert (answer["counts"]["retried"], answer["counts"]["over_limit"]) == (2, 2)
    now = statuses(api)
    assert [now[j] for j in jobs] == ["QUEUED", "QUEUED", "CANCELLED", "CANCELLED"]
    assert len(aws.dispatch_messages()) == 2


def test_a_large_selection_goes_on_page_by_page(aws, api) -> None:
    # Given five queued jobs
    jobs = words(api, 5)

    # When they are cancelled two a call, following next_token
    seen: list[str] = []
    body: dict[str, Any] = {"filter": {"job_type": "word-count"}, "limit": 2}
    calls = 0
    while True:
        status, answer, _ = bulk(api, "cancel", body, key="paged")
        assert status == 200, answer
        calls += 1
        seen.extend(j["job_id"] for j in answer["jobs"] if j["outcome"] == "cancelled")
        if answer["next_token"] is None:
            break
        body = {**body, "next_token": answer["next_token"]}

    # Then each job was cancelled once, oldest first, in three calls
    assert seen == jobs
    assert calls == 3
    assert set(statuses(api).values()) == {"CANCELLED"}
    # and a token of this operation opens no other (another key, tenant or filter): 422
    elsewhere = (("other", "analytics", {}), ("paged", "finance", {"job_type": "word-count"}))
    for key, tenant, filter_ in elsewhere:
        moved = {"filter": filter_, "limit": 2, "next_token": body["next_token"]}
        status, refused, _ = bulk(api, "cancel", moved, key=key, tenant=tenant)
        assert status == 422, refused
        assert refused["error"]["details"][0]["field"] == "next_token"


def test_a_call_cut_short_is_finished_by_its_repeat_and_retries_nothing_twice(
    aws, api, engine, monkeypatch
) -> None:
    # Given two sort-large jobs that failed (their application errors are not retried)
    first = engine.run(engine.submit(), "application_error")
    second = engine.run(engine.submit(), "application_error")
    assert (first["status"], second["status"]) == ("FAILED", "FAILED")

    # When a bulk retry is cut short after it changed the jobs but before it recorded the outcomes
    operations = ports().operations
    finish = operations.finish

    def dies(*args: Any, **kwargs: Any) -> None:
        raise TimeoutError("the function timed out")

    monkeypatch.setattr(operations, "finish", dies)
    status, _, _ = bulk(api, "retry", {"filter": {"job_type": "sort-large"}}, key="retry-once")
    assert status == 500
    monkeypatch.setattr(operations, "finish", finish)
    # and the first job's new attempt fails again before the caller repeats the call
    aws.run_dispatcher()
    engine.run(engine.get(first["job_id"]), "application_error")
    assert engine.get(first["job_id"])["status"] == "FAILED"
    messages = len(aws.dispatch_messages())

    # Then the repeat answers that it retried both, and retries neither again
    status, answer, _ = bulk(api, "retry", {"filter": {"job_type": "sort-large"}}, key="retry-once")
    assert status == 200, answer
    assert {j["job_id"]: j["outcome"] for j in answer["jobs"]} == {
        first["job_id"]: "retried",
        second["job_id"]: "retried",
    }
    assert engine.get(first["job_id"])["status"] == "FAILED"
    assert len(engine.get(first["job_id"])["attempts"]) == 2
    assert len(aws.dispatch_messages()) == messages


def test_a_job_that_changed_after_it_was_taken_is_left_alone_and_counted(aws, api, monkeypatch) -> None:
    # Given two queued jobs that are submitted to Batch between the moment a cancel of QUEUED jobs
    # takes them and the moment it would change them
    jobs = words(api, 2)
    operations = ports().operations
    plan = operations.plan

    def then_submitted(*args: Any) -> Any:
        recorded = plan(*args)
        aws.run_dispatcher()
        return recorded

    monkeypatch.setattr(operations, "plan", then_submitted)
    calls = aws.record_calls("batch")

    # When the cancel goes on
    status, answer, _ = bulk(api, "cancel", {"filter": {"status": ["QUEUED"]}})

    # Then both are answered changed and left SUBMITTED, their Batch jobs untouched
    assert status == 200, answer
    assert {j["job_id"]: j["outcome"] for j in answer["jobs"]} == dict.fromkeys(jobs, "changed")
    assert answer["counts"]["changed"] == 2
    assert {statuses(api)[j] for j in jobs} == {"SUBMITTED"}
    assert not [op for _, op, _ in calls if op == "TerminateJob"]


def test_created_range_selects_by_creation_time(aws, api, monkeypatch) -> None:
    # Given jobs created on three days
    days = [datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3)]
    made = {}
    for day in days:
        monkeypatch.setattr(ports(), "clock", lambda day=day: day)
        [made[day]] = words(api, 1)
    monkeypatch.setattr(ports(), "clock", lambda: days[-1] + timedelta(hours=1))

    # When a dry run asks for those created on the second day (an offset is an instant like any other)
    window = {"created_from": "2026-11-02T00:00:00Z", "created_to": "2026-11-02T13:00:00+01:00"}
    status, answer, _ = bulk(api, "cancel", {"filter": window, "dry_run": True})

    # Then only that day's job matches
    assert status == 200, answer
    assert [j["job_id"] for j in answer["jobs"]] == [made[days[1]]]


@pytest.mark.parametrize(
    ("action", "body", "key", "field", "reason"),
    [
        ("retry", {"filter": {"status": ["RUNNING"]}}, "k", "filter.status", "RUNNING"),
        ("cancel", {"filter": {"status": ["SUCCEEDED"]}}, "k", "filter.status", "SUCCEEDED"),
        ("cancel", {"filter": {"status": ["DONE"]}}, "k", "filter.status.0", ""),
        (
            "cancel",
            {"filter": {"created_from": "2026-11-02T00:00:00Z", "created_to": "2026-11-01T00:00:00Z"}},
            "k",
            "filter.created_to",
            "before created_from",
        ),
        ("cancel", {"filter": {"created_from": "2026-11-02T00:00"}}, "k", "filter.created_from", "timezone"),
        ("cancel", {"filter": {"created_from": "2999-01-01T00:00Z"}}, "k", "filter.created_from", "after"),
        ("cancel", {"filter": {}}, None, "Idempotency-Key", "required"),
        ("cancel", {"filter": {}, "limit": 101}, "k", "limit", "at most 100"),
        ("cancel", {"filter": {}, "dry_run": True, "limit": 1001}, "k", "limit", ""),
        ("cancel", {"dry_run": True}, "k", "filter", "required"),
        ("retry", {"filter": {"tenant": "finance"}}, "k", "filter.tenant", "unknown field"),
    ],
)
def test_a_filter_that_cannot_select_is_422_naming_the_field_and_writes_nothing(
    aws, api, action, body, key, field, reason
) -> None:
    words(api, 1)
    before = aws.table_items()

    status, refused, _ = bulk(api, action, body, key=key)

    assert status == 422, refused
    fields = {d["field"]: d["reason"] for d in refused["error"]["details"]}
    assert field in fields, fields
    assert reason in fields[field], fields
    assert aws.table_items() == before
