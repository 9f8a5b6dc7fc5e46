"""What an attempt, a job and a tenant's month cost: an estimate from the resources an attempt asked
for, how long it ran and on which capacity, at the price table's rates. Pure (the shipped table is
read once, as the policy is).

An attempt is priced as AWS Fargate bills a task: vCPUs x vCPU-hour + GB x GB-hour, per second from
started to stopped, at least `minimum_seconds`, Spot at `1 - spot_discount` of on-demand. An
attempt that never started costs nothing; one still running has no cost yet. Batch on EC2 bills
instances, not jobs: there the figure is the job's share of them at Fargate's rate for what it
reserved, which leaves out idle instances and scaling lag.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from batchplane.errors import ErrorDetail, PolicyError
from batchplane.models.job import Attempt, Capacity, CostBook, Job
from batchplane.models.policy import Costs, JobType, PolicyDocument
from batchplane.models.prices import PriceTable, Rate

MICROS = 1_000_000
# The layer's root: /opt/python in Lambda, layers/core in a checkout.
SHIPPED_PRICES = Path(__file__).resolve().parents[2] / "prices.json"
DEFAULT_REGION = "us-east-1"


def micros(usd: float) -> int:
    return round(usd * MICROS)


def usd(amount_micros: int) -> float:
    return amount_micros / MICROS


def month_of(moment: datetime) -> str:
    """The usage month a moment falls in, `YYYY-MM` (UTC)."""
    return f"{moment.year:04d}-{moment.month:02d}"


@dataclass(frozen=True)
class Pricing:
    region: str  # whose rates apply (the table's fallback for a region it lacks)
    architecture: str
    rate: Rate
    spot_discount: float
    minimum_seconds: int
    source: str
    as_of: date

    def hourly(self, vcpus: int, memory_mib: int, capacity: Capacity) -> float:
        on_demand = vcpus * self.rate.vcpu_hour + memory_mib / 1024 * self.rate.gb_hour
        return on_demand * (1 - self.spot_discount) if capacity is Capacity.SPOT else on_demand

    def run(self, vcpus: int, memory_mib: int, capacity: Capacity, seconds: float) -> float:
        return self.hourly(vcpus, memory_mib, capacity) * max(seconds, self.minimum_seconds) / 3600


@lru_cache(maxsize=1)
def shipped_prices() -> PriceTable:
    return PriceTable.model_validate_json(SHIPPED_PRICES.read_bytes())


def pricing_for(policy: PolicyDocument, region: str) -> Pricing:
    """The policy's price table (or the shipped one) at this region and the policy's architecture."""
    return _pricing(policy.costs, region)


def _pricing(costs: Costs, region: str) -> Pricing:
    table = costs.prices or shipped_prices()
    found = table.rate(region, costs.architecture)
    if found is None:
        raise PolicyError(
            f"no price for {region}/{costs.architecture}",
            [
                ErrorDetail(
                    "costs.prices.regions",
                    f"no rate for region {region} and architecture {costs.architecture}, "
                    "and no fallback_region that has one",
                )
            ],
        )
    used, rate = found
    return Pricing(
        region=used,
        architecture=costs.architecture,
        rate=rate,
        spot_discount=table.spot_discount,
        minimum_seconds=table.minimum_seconds,
        source=table.source,
        as_of=table.as_of,
    )


def default_pricing() -> Pricing:
    """The shipped table's rates in us-east-1 on x86_64 (what a store made without a policy uses)."""
    return _pricing(Costs(), DEFAULT_REGION)


def run_seconds(attempt: Attempt) -> float | None:
    """How long the attempt ran (started -> stopped); None while it runs or if it never started."""
    if attempt.started_at is None or attempt.stopped_at is None:
        return None
    return max(0.0, (attempt.stopped_at - attempt.started_at).total_seconds())


def attempt_cost(pricing: Pricing, attempt: Attempt) -> float | None:
    """The attempt's cost; 0 when it ended without starting, None while it runs."""
    seconds = run_seconds(attempt)
    if seconds is None:
        return 0.0 if attempt.status.is_terminal else None
    return pricing.run(attempt.vcpus, attempt.memory_mib, attempt.capacity, seconds)


@dataclass(frozen=True)
class JobCost:
    """A job's cost, split: the attempt that succeeded, the attempts that did not (by failure class),
    and what the successful attempt's capacity and memory cost over the first attempt's ask (a Spot
    job that fell back to on-demand, memory doubled after an out-of-memory kill)."""

    total: float
    successful: float | None
    retries: float
    premium: float
    by_failure_class: dict[str, float] = field(default_factory=dict)
    attempts: dict[int, float | None] = field(default_factory=dict)
    running: bool = False  # an attempt still runs: the totals so far

    @property
    def extra(self) -> float:
        """What retries and fallbacks added to what the job would have cost had its first try worked."""
        return self.retries + self.premium


def job_cost(pricing: Pricing, job: Job) -> JobCost:
    costs = {a.number: attempt_cost(pricing, a) for a in job.attempts}
    by_class: dict[str, float] = defaultdict(float)
    successful: float | None = None
    premium = 0.0
    first = job.attempts[0] if job.attempts else None
    for attempt in job.attempts:
        cost = costs[attempt.number]
        if cost is None:
            continue
        if attempt.status.value == "SUCCEEDED":
            successful = cost
            seconds = run_seconds(attempt)
            if first is not None and seconds is not None:
                as_asked = pricing.run(first.vcpus, first.memory_mib, first.capacity, seconds)
                premium = max(0.0, cost - as_asked)
        else:
            by_class[(attempt.failure_class.value if attempt.failure_class else "UNKNOWN")] += cost
    retries = sum(by_class.values())
    return JobCost(
        total=retries + (successful or 0.0),
        successful=successful,
        retries=retries,
        premium=premium,
        by_failure_class=dict(by_class),
        attempts=costs,
        running=any(cost is None for cost in costs.values()),
    )


def admission_estimate(pricing: Pricing, job_type: JobType, job: Job) -> float:
    """What the budget reserves at admission: the most one attempt of the job can cost (its resources
    on its first capacity for the job type's whole timeout). The finish replaces it with the cost."""
    return pricing.run(job.vcpus, job.memory_mib, job.capacity, job_type.timeout_seconds)


@dataclass(frozen=True)
class UsageCharge:
    """What a job's finish adds to its tenant's month (the month it was admitted in), micro-USD."""

    tenant: str
    month: str
    job_type: str
    outcome: str
    cost: int  # added since the job's last finish
    extra: int  # of which retries and fallbacks
    released: int  # the admission's reservation, given back
    finishes: int = 1  # 0: an attempt that ended after its job (a cancelled job's last run) adds its cost

    @property
    def committed(self) -> int:
        """The change of the month's committed spend (spent + reserved)."""
        return self.cost - self.released


def settle(pricing: Pricing, job: Job, *, finish: bool = True) -> tuple[Job, UsageCharge]:
    """The finished job with its cost book closed, and the charge its finish makes (with `finish`
    False: what an attempt that ended after the job adds, counted in no finish)."""
    cost = job_cost(pricing, job)
    total, extra = micros(cost.total), micros(cost.extra)
    book = job.cost_book
    charge = UsageCharge(
        tenant=job.tenant,
        month=book.month or month_of(job.created_at),
        job_type=job.job_type,
        outcome=job.status.value,
        cost=max(0, total - book.charged),
        extra=max(0, extra - book.charged_extra),
        released=book.reserved,
        finishes=1 if finish else 0,
    )
    closed = CostBook(
        reserved=0,
        charged=max(total, book.charged),
        charged_extra=max(extra, book.charged_extra),
        month=book.month,
    )
    return job.model_copy(update={"cost_book": closed}), charge
