"""Held for the budget, not rejected: a file drop over its tenant's monthly budget is a HELD job on moto,
in its type's held queue, without a slot or a reservation, released oldest first when the month has
room (the month turns, the budget is raised), its reservation made in the releasing transaction."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from batchplane.models.policy import Budget
from batchplane.service import held
from batchplane.wiring import ports
from tests.integration import test_costs, test_held_jobs
from tests.integration.test_costs import SORT_RESERVATION, at
from tests.integration.test_held_jobs import (
    TENANT,
    FinishingBatch,
    finish,
    ingest_dlq_depth,
    jobs,
    quota,
    sort_drop,
    statuses,
)
from tests.support import LambdaContext, api_event, load_function

budget = test_costs.budget
drop = test_held_jobs.drop
ONE_JOB = round(SORT_RESERVATION * 1_000_000)  # one sort-large reservation, micro-USD
NOVEMBER_EVENING = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


@pytest.fixture
def batch(aws, budget, monkeypatch) -> FinishingBatch:
    """Room for one sort-large reservation a month (set before the fake Batch: it reloads the ports),
    and the clock on November's last evening."""
    budget(SORT_RESERVATION * 1.5)
    fake = FinishingBatch()
    monkeypatch.setattr(ports(), "batch", fake)
    at(NOVEMBER_EVENING)
    return fake


def drops(aws, drop, *numbers: int) -> None:
    """Files dropped a second apart from November's last evening on: the held queue's order is theirs."""
    for n in numbers:
        at(NOVEMBER_EVENING + timedelta(seconds=n))
        assert drop(sort_drop(aws, n)) == []


def quiet(moment: datetime) -> datetime:
    """A moment past StaleAfterSeconds after `moment` (and after every drop of these tests)."""
    return moment + ports().stale_after + timedelta(minutes=1)


def reserved(month: str) -> int:
    found = ports().store.usage(TENANT, month, month)
    return found[0].reserved if found else 0


def sweep_at(moment: datetime) -> dict[str, object]:
    """The sweeper's invocation at `moment` (past StaleAfterSeconds, the held jobs are quiet)."""
    at(moment)
    report: dict[str, object] = load_function("sweeper").handler({}, LambdaContext())
    return report


def job_of(aws, file: str) -> dict[str, object]:
    [found] = [j for j in jobs(aws) if j["parameters"]["M"]["input"]["S"].endswith(file)]
    return found


def raise_budget(monkeypatch: pytest.MonkeyPatch, monthly_usd: float) -> None:
    """The policy as a redeploy with a larger budget leaves it (the same ports: the fake Batch stays)."""
    policy = ports().policy
    budgets = policy.budgets.model_copy(update={"tenants": {TENANT: Budget(monthly_usd=monthly_usd)}})
    monkeypatch.setattr(ports(), "policy", policy.model_copy(update={"budgets": budgets}))


def test_a_drop_over_budget_is_held_with_the_reason_without_slot_or_reservation(aws, batch, drop) -> None:
    # Given a drop that filled the month's budget
    drops(aws, drop, 0)

    # When two more files are dropped
    failures = drop(sort_drop(aws, 1), sort_drop(aws, 2))

    # Then neither record fails nor is dead-lettered: both are HELD, naming the budget
    assert failures == [] and ingest_dlq_depth(aws) == 0
    assert statuses(aws) == {"part-0000.csv": "QUEUED", "part-0001.csv": "HELD", "part-0002.csv": "HELD"}
    budget_usd = f"${SORT_RESERVATION * 1.5:.4f}"
    reason = f"monthly budget {budget_usd} of tenant {TENANT} reached for 2026-11"
    assert job_of(aws, "part-0001.csv")["held_reason"]["S"] == reason
    # And they take no slot and reserve nothing; only the first job is dispatched
    assert quota(aws) == (1, 2)
    assert reserved("2026-11") == ONE_JOB
    assert len(aws.dispatch_messages(delete=True)) == 1


def test_the_month_turning_releases_the_oldest_reserving_in_the_new_month(aws, batch, drop) -> None:
    # Given November's budget filled and two drops held for it
    drops(aws, drop, 0, 1, 2)
    aws.run_dispatcher()

    # When the sweeper runs late on November 30th, the month still full
    assert sweep_at(quiet(NOVEMBER_EVENING))["released"] == 0
    assert statuses(aws)["part-0001.csv"] == "HELD"

    # And again once December has begun
    report = sweep_at(quiet(datetime(2026, 12, 1, tzinfo=UTC)))

    # Then the oldest held job is QUEUED with December's reservation; the younger one waits for room
    assert report["released"] == 1
    by_file = statuses(aws)
    assert (by_file["part-0001.csv"], by_file["part-0002.csv"]) == ("QUEUED", "HELD")
    assert (reserved("2026-11"), reserved("2026-12")) == (ONE_JOB, ONE_JOB)
    assert quota(aws) == (2, 1)
    # And its finish is booked to December, its reservation given back there
    aws.run_dispatcher()
    finish(aws, batch, 2)
    books = {m.month: m for m in ports().store.usage(TENANT, "2026-11", "2026-12")}
    assert books["2026-12"].spent > 0 and books["2026-12"].lines[0].jobs == 1
    assert books["2026-11"].lines[0].jobs == 1


def test_releases_racing_for_the_months_room_admit_one(aws, batch, drop) -> None:
    # Given two drops held for November's budget, and December with room for one of them
    drops(aws, drop, 0, 1, 2)
    at(datetime(2026, 12, 1, 0, 5, tzinfo=UTC))
    start = threading.Barrier(4)
    released: list[str] = []

    def releaser() -> None:
        start.wait()
        released.extend(job.job_id for job in held.release_held(ports(), TENANT, "sort-large"))

    # When four releasers run at once
    threads = [threading.Thread(target=releaser) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then one job was released, once, and December holds exactly its reservation
    assert len(released) == 1
    assert statuses(aws)["part-0001.csv"] == "QUEUED"
    assert reserved("2026-12") == ONE_JOB
    assert quota(aws) == (2, 1)
    assert len(aws.dispatch_messages(delete=True)) == 2  # the first drop's and the release's


def test_raising_the_budget_releases_held_jobs_oldest_first(aws, batch, drop, monkeypatch) -> None:
    drops(aws, drop, 0, 1, 2)

    # When the budget is raised to room for two more, and the sweeper runs
    raise_budget(monkeypatch, SORT_RESERVATION * 3.5)
    report = sweep_at(quiet(NOVEMBER_EVENING))

    # Then both held jobs are released in November, within the new budget
    assert report["released"] == 2
    assert set(statuses(aws).values()) == {"QUEUED"}
    assert reserved("2026-11") == 3 * ONE_JOB
    assert quota(aws) == (3, 0)


def test_a_new_drop_that_fits_the_budget_queues_behind_a_budget_held_one(
    aws, batch, drop, monkeypatch
) -> None:
    # Given a held drop for the budget, and then room for one more job (its finish, say, gave it back)
    drops(aws, drop, 0, 1)
    raise_budget(monkeypatch, SORT_RESERVATION * 2.5)

    # When a new file is dropped, before any release
    drops(aws, drop, 2)

    # Then it does not overtake: it is held behind the older one, which the next release takes first
    assert statuses(aws)["part-0002.csv"] == "HELD"
    assert job_of(aws, "part-0002.csv")["held_reason"]["S"] == "behind 1 held sort-large jobs (oldest first)"
    [first] = held.release_held(ports(), TENANT, "sort-large")
    assert first.job_id == job_of(aws, "part-0001.csv")["pk"]["S"].removeprefix("JOB#")
    by_file = statuses(aws)
    assert (by_file["part-0001.csv"], by_file["part-0002.csv"]) == ("QUEUED", "HELD")


def test_a_budget_held_job_cancelled_is_never_released(aws, batch, drop, api, monkeypatch) -> None:
    drops(aws, drop, 0, 1)
    aws.run_dispatcher()  # the first drop's job goes to Batch
    job_id = job_of(aws, "part-0001.csv")["pk"]["S"].removeprefix("JOB#")

    # When the tenant cancels the held job, and the month then has room
    status, body, _ = api(api_event("POST", f"/jobs/{job_id}/cancel", resource="/jobs/{job_id}/cancel"))
    raise_budget(monkeypatch, SORT_RESERVATION * 3.5)
    report = sweep_at(quiet(NOVEMBER_EVENING))

    # Then it stays CANCELLED: no slot, no reservation, no dispatch
    assert (status, body["status"]) == (200, "CANCELLED")
    assert report["released"] == 0
    assert statuses(aws)["part-0001.csv"] == "CANCELLED"
    assert quota(aws) == (1, 0)
    assert reserved("2026-11") == ONE_JOB
    assert aws.dispatch_messages() == []
