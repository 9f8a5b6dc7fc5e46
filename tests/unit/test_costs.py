"""Cost estimates (policy/cost.py): an attempt from its resources, run time and capacity at the price
table's rates; a job split into its successful attempt and what retries and fallbacks added; what a
finish charges to its tenant's month. Every expected figure is worked out by hand from the shipped
table (us-east-1, x86_64: $0.04048 a vCPU-hour, $0.004445 a GB-hour, Spot 70% off, 60 s minimum)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batchplane.errors import PolicyError
from batchplane.models.job import Attempt, AttemptStatus, Capacity, CostBook, FailureClass, Job, JobStatus
from batchplane.policy.cost import (
    admission_estimate,
    attempt_cost,
    default_pricing,
    job_cost,
    micros,
    month_of,
    pricing_for,
    settle,
    shipped_prices,
)
from batchplane.policy.document import load_policy, parse_policy

POLICY_PATH = Path(__file__).parents[2] / "layers" / "core" / "policy.yaml"
POLICY = load_policy(POLICY_PATH)
START = datetime(2026, 11, 30, 23, 50, tzinfo=UTC)
PRICING = default_pricing()


def attempt(
    number: int,
    *,
    capacity: Capacity = Capacity.ON_DEMAND,
    vcpus: int = 1,
    memory_mib: int = 1024,
    seconds: float | None = 3600,
    status: AttemptStatus = AttemptStatus.SUCCEEDED,
    failure_class: FailureClass | None = None,
) -> Attempt:
    return Attempt(
        number=number,
        job_name=f"bp-j-{number}",
        queue="q",
        job_definition="d",
        capacity=capacity,
        vcpus=vcpus,
        memory_mib=memory_mib,
        status=status,
        failure_class=failure_class,
        submitted_at=START,
        started_at=START if seconds is not None else None,
        stopped_at=START + timedelta(seconds=seconds) if seconds is not None else None,
    )


def job_of(*attempts: Attempt, status: JobStatus = JobStatus.SUCCEEDED, book: CostBook | None = None) -> Job:
    return Job(
        job_id="j",
        tenant="analytics",
        job_type="sort-large",
        status=status,
        parameters={},
        vcpus=1,
        memory_mib=attempts[-1].memory_mib if attempts else 256,
        capacity=Capacity.SPOT,
        output_prefix="s3://a/outputs/analytics/j/",
        created_at=START,
        updated_at=START,
        attempts=list(attempts),
        cost_book=book or CostBook(),
    )


def test_the_shipped_table_says_where_its_prices_come_from_and_when() -> None:
    table = shipped_prices()
    assert table.source == "https://aws.amazon.com/fargate/pricing/"
    assert table.as_of.isoformat() == "2026-03-01"
    assert PRICING.region == "us-east-1" and PRICING.architecture == "x86_64"


def test_an_on_demand_hour_is_vcpus_times_the_vcpu_rate_plus_gb_times_the_gb_rate() -> None:
    # Given 2 vCPUs and 4 GB on demand for an hour
    cost = attempt_cost(PRICING, attempt(1, vcpus=2, memory_mib=4096, seconds=3600))

    # Then 2 x 0.04048 + 4 x 0.004445
    assert cost == pytest.approx(0.09874)


def test_spot_costs_the_discounted_share_of_on_demand() -> None:
    cost = attempt_cost(PRICING, attempt(1, capacity=Capacity.SPOT, vcpus=2, memory_mib=4096))

    assert cost == pytest.approx(0.09874 * 0.3)


def test_a_short_attempt_is_billed_the_minute_fargate_bills() -> None:
    ten_seconds = attempt_cost(PRICING, attempt(1, seconds=10))

    assert ten_seconds == pytest.approx((0.04048 + 0.004445) / 60)


def test_an_attempt_that_never_started_costs_nothing_and_a_running_one_has_no_cost_yet() -> None:
    never_ran = attempt(
        1, seconds=None, status=AttemptStatus.FAILED, failure_class=FailureClass.INFRASTRUCTURE
    )
    running = attempt(1, status=AttemptStatus.RUNNING).model_copy(update={"stopped_at": None})

    assert attempt_cost(PRICING, never_ran) == 0.0
    assert attempt_cost(PRICING, running) is None


def test_a_job_splits_into_its_successful_attempt_the_failed_ones_and_the_fallback_premium() -> None:
    # Given a Spot attempt reclaimed after 30 minutes, then an on-demand attempt that succeeded in an hour
    reclaimed = attempt(
        1,
        capacity=Capacity.SPOT,
        seconds=1800,
        status=AttemptStatus.FAILED,
        failure_class=FailureClass.SPOT_INTERRUPTED,
    )
    job = job_of(reclaimed, attempt(2, capacity=Capacity.ON_DEMAND, seconds=3600))

    # When it is priced
    cost = job_cost(PRICING, job)

    # Then the hour on demand is the successful attempt, the reclaimed half hour on Spot the retries,
    # and the premium what the hour cost over the same hour on Spot (the first attempt's ask)
    hour = 0.04048 + 0.004445
    assert cost.successful == pytest.approx(hour)
    assert cost.retries == pytest.approx(hour * 0.3 / 2)
    assert cost.by_failure_class == {"SPOT_INTERRUPTED": pytest.approx(hour * 0.3 / 2)}
    assert cost.premium == pytest.approx(hour * 0.7)
    assert cost.extra == pytest.approx(hour * 0.3 / 2 + hour * 0.7)
    assert cost.total == pytest.approx(hour + hour * 0.3 / 2)
    assert not cost.running


def test_more_memory_after_an_out_of_memory_kill_is_a_premium_on_the_successful_attempt() -> None:
    oom = attempt(
        1, memory_mib=1024, seconds=600, status=AttemptStatus.FAILED, failure_class=FailureClass.OUT_OF_MEMORY
    )
    job = job_of(oom, attempt(2, memory_mib=2048, seconds=3600))

    cost = job_cost(PRICING, job)

    assert cost.premium == pytest.approx(0.004445)  # the second GB for the hour


def test_the_admission_estimate_is_one_attempt_for_the_whole_timeout() -> None:
    # sort-large: 1800 s timeout; the job asks for 1 vCPU and 256 MiB on Spot
    job = job_of()

    estimate = admission_estimate(PRICING, POLICY.job_types["sort-large"], job)

    assert estimate == pytest.approx((0.04048 + 0.25 * 0.004445) * 0.3 / 2)


def test_a_finish_charges_the_month_the_job_was_admitted_in_and_gives_its_reservation_back() -> None:
    # Given a job admitted at 23:50 on 30 November that reserved $0.01 and finished in December
    job = job_of(attempt(1, seconds=3600), book=CostBook(reserved=10_000))

    # When it is settled
    settled, charge = settle(PRICING, job)

    # Then November is charged its cost, and the reservation is released
    assert charge.month == "2026-11"
    assert charge.cost == micros(0.04048 + 0.004445) == 44_925
    assert charge.released == 10_000
    assert charge.committed == 44_925 - 10_000
    assert settled.cost_book == CostBook(reserved=0, charged=44_925, charged_extra=0)


def test_a_job_reserved_at_its_release_is_charged_to_the_release_month() -> None:
    # Given a job created in November, held for its budget and released (reserving) in December
    job = job_of(attempt(1, seconds=3600), book=CostBook(reserved=10_000, month="2026-12"))

    # When it is settled
    settled, charge = settle(PRICING, job)

    # Then December is charged and gets the reservation back; the book keeps its month
    assert (charge.month, charge.released) == ("2026-12", 10_000)
    assert settled.cost_book.month == "2026-12"


def test_a_job_finishing_again_after_a_manual_retry_charges_only_what_it_added() -> None:
    first = attempt(1, seconds=3600, status=AttemptStatus.FAILED, failure_class=FailureClass.APPLICATION)
    failed, _ = settle(PRICING, job_of(first, status=JobStatus.FAILED))

    again = failed.model_copy(
        update={"attempts": [first, attempt(2, seconds=3600)], "status": JobStatus.SUCCEEDED}
    )
    _, charge = settle(PRICING, again)

    assert charge.cost == 44_925  # the second hour only
    assert charge.outcome == "SUCCEEDED"


def test_the_month_is_utc() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == "2026-12"
    assert month_of(datetime(2027, 1, 1, tzinfo=UTC)) == "2027-01"


def _with(**sections: object) -> dict[str, object]:
    import yaml

    return {**yaml.safe_load(POLICY_PATH.read_text()), **sections}


def test_the_policy_can_replace_the_price_table_and_the_architecture() -> None:
    policy = parse_policy(
        _with(
            costs={
                "architecture": "arm64",
                "prices": {
                    "source": "https://example.com/our-ec2-rates",
                    "as_of": "2026-11-01",
                    "spot_discount": 0.5,
                    "regions": {"eu-west-1": {"arm64": {"vcpu_hour": 0.1, "gb_hour": 0.01}}},
                },
            }
        )
    )

    pricing = pricing_for(policy, "eu-west-1")

    assert pricing.rate.vcpu_hour == 0.1 and pricing.spot_discount == 0.5
    assert attempt_cost(pricing, attempt(1, capacity=Capacity.SPOT)) == pytest.approx((0.1 + 0.01) * 0.5)


def test_a_region_the_table_lacks_uses_its_fallback_and_says_so() -> None:
    pricing = pricing_for(POLICY, "ap-south-1")

    assert pricing.region == "us-east-1"


def test_a_table_without_the_region_or_a_fallback_is_refused_naming_the_field() -> None:
    policy = parse_policy(
        _with(
            costs={
                "prices": {
                    "source": "s",
                    "as_of": "2026-11-01",
                    "spot_discount": 0.5,
                    "regions": {"eu-west-1": {"x86_64": {"vcpu_hour": 0.1, "gb_hour": 0.01}}},
                }
            }
        )
    )

    with pytest.raises(PolicyError) as refused:
        pricing_for(policy, "us-east-1")

    assert refused.value.details[0].field == "costs.prices.regions"


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"costs": {"architecture": "sparc"}}, "costs.architecture"),
        (
            {"budgets": {"tenants": {"analytics": {"monthly_usd": 0}}}},
            "budgets.tenants.analytics.monthly_usd",
        ),
        ({"budgets": {"default": {"monthly_usd": 10, "alert_at": 1.5}}}, "budgets.default.alert_at"),
        ({"budgets": {"tenants": {"bad/name": {"monthly_usd": 10}}}}, "budgets.tenants"),
    ],
)
def test_a_bad_costs_or_budgets_field_fails_the_policy_with_its_path(
    section: dict[str, object], path: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(_with(**section))

    assert path in [d.field for d in refused.value.details]


def test_a_tenant_without_a_budget_of_its_own_has_the_default() -> None:
    policy = parse_policy(
        _with(
            budgets={
                "default": {"monthly_usd": 50},
                "tenants": {"analytics": {"monthly_usd": 500, "alert_at": 0.9}},
            }
        )
    )

    assert policy.budgets.of("analytics").monthly_usd == 500  # type: ignore[union-attr]
    assert policy.budgets.of("other").monthly_usd == 50  # type: ignore[union-attr]
    assert parse_policy(_with()).budgets.of("analytics") is None


def test_an_attempt_ending_after_its_job_adds_its_cost_to_no_new_finish() -> None:
    # Given a job cancelled while its attempt ran, its finish already charged (nothing had ended)
    running = attempt(1, capacity=Capacity.SPOT, status=AttemptStatus.RUNNING).model_copy(
        update={"stopped_at": None}
    )
    cancelled, first = settle(PRICING, job_of(running, status=JobStatus.CANCELLED))
    assert (first.cost, first.finishes) == (0, 1)

    # When the attempt's end is recorded, an hour after it started
    ended = running.model_copy(
        update={"status": AttemptStatus.FAILED, "stopped_at": START + timedelta(hours=1)}
    )
    _, late = settle(PRICING, cancelled.model_copy(update={"attempts": [ended]}), finish=False)

    # Then the hour on Spot is added, and no finish is counted
    assert late.cost == micros((0.04048 + 0.004445) * 0.3)
    assert late.finishes == 0
