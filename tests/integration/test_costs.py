"""Costs and budgets on moto: each attempt's and job's estimated cost in GET /jobs/{job_id}, the
month's books in GET /usage (written by the finishing transaction), and a tenant's monthly budget
enforced by the creating transaction, at the month's edge and under concurrent submissions.

Figures are worked out by hand from the shipped price table (us-east-1, x86_64: $0.04048 a
vCPU-hour, $0.004445 a GB-hour, Spot 70% off) and the run times of events/batch/*.json
(out_of_memory: 380.473 s from the running event's start, succeeded: 186.244 s)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchplane.errors import BudgetExceeded
from batchplane.models.request import JobRequest
from batchplane.service import jobs
from batchplane.service.ports import Ports
from batchplane.wiring import ports
from tests.support import POLICY_PATH, api_event, clear_caches, tenant_input

INPUT = tenant_input("sort/big.csv")
SPOT_HOUR_1_GB = (0.04048 + 1 * 0.004445) * 0.3
SPOT_HOUR_2_GB = (0.04048 + 2 * 0.004445) * 0.3
# sort-large asks 1 vCPU and 256 MiB on Spot by default, for at most its 1,800 s timeout.
SORT_RESERVATION = round((0.04048 + 0.25 * 0.004445) * 0.3 * 1800 / 3600 * 1_000_000) / 1_000_000


@pytest.fixture
def budget(aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`budget(monthly_usd, alert_at)`: the shipped policy with a budget for tenant analytics."""

    def set_budget(monthly_usd: float, alert_at: float = 0.8) -> None:
        document = yaml.safe_load(POLICY_PATH.read_text())
        document["budgets"] = {"tenants": {"analytics": {"monthly_usd": monthly_usd, "alert_at": alert_at}}}
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(document))
        monkeypatch.setenv("POLICY_PATH", str(path))
        clear_caches()

    return set_budget


def at(moment: datetime) -> None:
    """The handlers' clock stands at `moment`."""
    ports().clock = lambda: moment


def submit(api, **fields: Any) -> tuple[int, Any]:
    body = {"job_type": "sort-large", "parameters": {"input": INPUT}, **fields}
    status, job, _ = api(api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"}))
    return status, job


def usage(api, **query: str) -> dict[str, Any]:
    status, body, _ = api(api_event("GET", "/usage", query=query or None))
    assert status == 200, body
    return body


def job_items(aws) -> int:
    table = aws.env["JOBS_TABLE_NAME"]
    items = aws.client("dynamodb").scan(
        TableName=table, FilterExpression="sk = :j", ExpressionAttributeValues={":j": {"S": "JOB"}}
    )
    return len(items["Items"])


def test_a_job_shows_each_attempts_cost_and_what_the_retry_added(aws, engine) -> None:
    # Given a sort-large job killed for memory at 1 GB, then successful with 2 GB, both on Spot
    job = engine.submit(memory_mib=1024)
    job = engine.run(job, "out_of_memory")
    job = engine.run(job, "succeeded")
    assert job["status"] == "SUCCEEDED"

    # Then each attempt has its cost, and the job its split
    first, second = (a["cost_usd"] for a in job["attempts"])
    assert first == pytest.approx(SPOT_HOUR_1_GB * 380.473 / 3600, abs=1e-6)
    assert second == pytest.approx(SPOT_HOUR_2_GB * 186.244 / 3600, abs=1e-6)
    cost = job["cost"]
    assert cost["successful_usd"] == second
    assert cost["retries_usd"] == first
    assert cost["by_failure_class"] == {"OUT_OF_MEMORY": first}
    assert cost["premium_usd"] == pytest.approx(0.004445 * 0.3 * 186.244 / 3600, abs=1e-6)  # the second GB
    assert cost["total_usd"] == pytest.approx(first + second, abs=1e-6)
    assert cost["prices"] == {
        "region": "us-east-1",
        "architecture": "x86_64",
        "source": "https://aws.amazon.com/fargate/pricing/",
        "as_of": "2026-03-01",
    }


def test_usage_totals_the_callers_finished_jobs_by_job_type_and_outcome(aws, engine, api) -> None:
    # Given one job that succeeded after a retry and one that failed for good
    done = engine.run(engine.run(engine.submit(memory_mib=1024), "out_of_memory"), "succeeded")
    failed = engine.run(engine.submit(memory_mib=8192), "out_of_memory")
    assert failed["status"] == "FAILED"
    month = done["created_at"][:7]

    # When the caller asks for its usage
    body = usage(api, **{"from": month, "to": month})

    # Then each outcome is a line with its jobs and cost, and the month's spend is their sum
    lines = {line["outcome"]: line for line in body["by_job_type"]}
    assert lines["SUCCEEDED"]["jobs"] == 1 and lines["FAILED"]["jobs"] == 1
    assert lines["SUCCEEDED"]["cost_usd"] == pytest.approx(done["cost"]["total_usd"], abs=1e-6)
    assert lines["SUCCEEDED"]["extra_usd"] == pytest.approx(done["cost"]["extra_usd"], abs=1e-6)
    assert lines["FAILED"]["cost_usd"] == pytest.approx(failed["cost"]["total_usd"], abs=1e-6)
    [only] = body["months"]
    assert only["spent_usd"] == pytest.approx(body["total_usd"]) and only["reserved_usd"] == 0
    # And another tenant sees none of it
    status, other, _ = api(api_event("GET", "/usage", query={"from": month, "to": month}, tenant="intruder"))
    assert status == 200 and other["months"] == [] and other["total_usd"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [({"from": "2026-13"}, "from"), ({"to": "26-01"}, "to"), ({"from": "2026-12", "to": "2026-11"}, "from")],
)
def test_a_bad_usage_range_is_a_422_naming_the_field(api, query: dict[str, str], field: str) -> None:
    status, body, _ = api(api_event("GET", "/usage", query=query))

    assert status == 422
    assert field in [d["field"] for d in body["error"]["details"]]


def test_a_submission_that_would_pass_the_budget_is_a_429_naming_budget_and_writes_nothing(
    aws, api, budget
) -> None:
    # Given a budget with room for three sort-large reservations
    budget(SORT_RESERVATION * 3.5)
    assert [submit(api)[0] for _ in range(3)] == [202, 202, 202]

    # When a fourth is submitted
    status, body = submit(api)

    # Then it is refused with the reason, and no job was written
    assert status == 429
    assert body["error"]["code"] == "budget_exceeded"
    [detail] = body["error"]["details"]
    assert detail["field"] == "budget" and "committed" in detail["reason"]
    assert job_items(aws) == 3
    [month] = usage(api)["months"]
    assert month["reserved_usd"] == pytest.approx(SORT_RESERVATION * 3, abs=1e-6)


def test_a_finish_gives_back_what_its_reservation_held_beyond_its_cost(aws, engine, api, budget) -> None:
    budget(SORT_RESERVATION * 1.5)
    job = engine.submit()
    assert submit(api)[0] == 429  # the first job's reservation fills the month

    # When the job finishes, costing far less than its timeout's worth
    engine.run(job, "succeeded")

    # Then the month has room again
    assert submit(api)[0] == 202


def test_the_budget_alert_is_raised_once_a_month_when_the_threshold_is_committed(
    aws, api, budget, watch
) -> None:
    budget(SORT_RESERVATION * 4, alert_at=0.5)
    at(datetime(2026, 11, 10, tzinfo=UTC))

    submit(api)
    aws.outbox.drain()
    assert watch.alerts() == []  # 25% committed
    submit(api)
    submit(api)
    aws.outbox.drain()

    [alert] = watch.alert_messages()
    assert "analytics" in alert["Message"] and "50% of its 2026-11 budget" in alert["Message"]


def test_a_new_month_has_the_whole_budget_and_a_job_is_booked_to_its_admission_month(
    aws, engine, api, budget
) -> None:
    # Given November's budget filled by a job admitted a minute before midnight
    budget(SORT_RESERVATION * 1.5)
    at(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    november = engine.submit()
    assert submit(api)[0] == 429

    # When December begins
    at(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))

    # Then a submission is admitted against December's budget
    assert submit(api)[0] == 202
    # And the November job, finishing in December, is charged to November
    engine.run(november, "succeeded")
    books = {m["month"]: m for m in usage(api, **{"from": "2026-11", "to": "2026-12"})["months"]}
    assert books["2026-11"]["spent_usd"] > 0 and books["2026-11"]["reserved_usd"] == 0
    assert books["2026-12"]["spent_usd"] == 0
    assert books["2026-12"]["reserved_usd"] == pytest.approx(SORT_RESERVATION, abs=1e-6)


def request() -> JobRequest:
    return JobRequest(tenant="analytics", job_type="sort-large", parameters={"input": INPUT})


def test_a_submission_that_read_the_month_before_another_filled_it_is_refused(aws, budget) -> None:
    # Given room for one job, and a submission that reads the month's usage with room left, while
    # another submission lands between that read and its write
    budget(SORT_RESERVATION * 1.5)
    real: Ports = ports()
    landed: list[str] = []

    class Racing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real.store, name)

        def create(self, *args: Any, **kwargs: Any) -> None:
            if not landed:
                landed.append(jobs.submit(real, request()).job.job_id)
            real.store.create(*args, **kwargs)

    racing = Ports(**{**real.__dict__, "store": Racing()})

    # When the first submission writes
    with pytest.raises(BudgetExceeded) as refused:
        jobs.submit(racing, request())

    # Then its hold fails on the month's count: the other job is the only one
    assert refused.value.details[0].field == "budget"
    assert landed and job_items(aws) == 1


def test_concurrent_submissions_at_the_edge_never_commit_more_than_the_budget(aws, budget) -> None:
    # Given room for three jobs, and eight submissions at once
    budget(SORT_RESERVATION * 3.5)
    service = ports()
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        try:
            jobs.submit(service, request())
            outcomes.append("admitted")
        except BudgetExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly three were admitted, and the month holds exactly their reservations
    assert sorted(outcomes) == ["admitted"] * 3 + ["refused"] * 5
    [month] = service.store.usage("analytics", "0000-00", "9999-99")
    assert month.reserved == round(SORT_RESERVATION * 1_000_000) * 3
    assert job_items(aws) == 3


def test_a_cancelled_jobs_last_run_is_booked_when_it_ends_after_the_cancel(aws, engine, api) -> None:
    # Given a running job cancelled: it finishes (one CANCELLED finish) while its attempt still runs
    job = engine.submit()
    engine.deliver("running", job)
    api(api_event("POST", f"/jobs/{job['job_id']}/cancel", resource="/jobs/{job_id}/cancel"))
    [line] = usage(api)["by_job_type"]
    assert (line["outcome"], line["jobs"], line["cost_usd"]) == ("CANCELLED", 1, 0)

    # When the attempt's end arrives (Batch stopped it 240.019 s after it started)
    assert engine.deliver("cancelled", job)["outcome"] == "recorded"

    # Then its cost is added to the same finish, not counted as another
    [line] = usage(api)["by_job_type"]
    ran = (0.04048 + 0.25 * 0.004445) * 0.3 * 240.019 / 3600
    assert line["jobs"] == 1
    assert line["cost_usd"] == pytest.approx(ran, abs=1e-6)
    assert engine.get(job["job_id"])["cost"]["total_usd"] == pytest.approx(ran, abs=1e-6)
