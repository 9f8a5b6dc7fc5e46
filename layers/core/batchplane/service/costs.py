"""Costs and budgets: the prices a deployment uses, a tenant's monthly usage, and the reservation a
budget makes at admission.

A budget is enforced in the write that creates the job: its estimate (policy/cost.py::
admission_estimate) is added to the month's committed spend only while that stays within the
budget, so submissions at the edge, however many at once, never commit more than the budget. A job's
finish replaces its reservation by its cost (adapters/store.py::save). The submission whose
reservation first takes the month to `alert_at` of its budget owes the month's one alert, written
with it (the outbox delivers it).
"""

from __future__ import annotations

from batchplane.errors import BudgetExceeded, ErrorDetail, InvalidRequest
from batchplane.lifecycle.outbox import owing
from batchplane.models.job import CostBook, Job
from batchplane.models.policy import Budget
from batchplane.observability import MetricUnit, metric
from batchplane.policy.admission import job_type_of
from batchplane.policy.cost import (
    DEFAULT_REGION,
    Pricing,
    admission_estimate,
    job_cost,
    micros,
    month_of,
    pricing_for,
    usd,
)
from batchplane.service.ports import BudgetHold, Ports, UsageMonth

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
MAX_MONTHS = 36  # one Query: 36 small items are far under 1 MB


def pricing_of(ports: Ports) -> Pricing:
    return ports.pricing or pricing_for(ports.policy, DEFAULT_REGION)


def record_cost(ports: Ports, job: Job) -> None:
    """EMF metrics of a finished job's cost by job type and outcome: `JobCost` (its total; the
    average of SUCCEEDED is the cost per successful job) and `JobExtraCost` (retries and fallbacks)."""
    cost = job_cost(pricing_of(ports), job)
    dimensions = {"job_type": job.job_type, "outcome": job.status.value}
    metric("JobCost", cost.total, MetricUnit.NoUnit, **dimensions)
    metric("JobExtraCost", cost.extra, MetricUnit.NoUnit, **dimensions)


def month_usage(ports: Ports, tenant: str, month: str) -> UsageMonth:
    found = ports.store.usage(tenant, month, month)
    return found[0] if found else UsageMonth(month=month, spent=0, reserved=0, alerted=False, lines=[])


def usage(ports: Ports, tenant: str, first: str, last: str) -> list[UsageMonth]:
    """The caller's months from `first` to `last` (YYYY-MM); a month without jobs is not listed."""
    if first > last:
        raise InvalidRequest("from is after to", [ErrorDetail("from", f"{first} is after to={last}")])
    years, months = int(last[:4]) - int(first[:4]), int(last[5:]) - int(first[5:])
    if years * 12 + months + 1 > MAX_MONTHS:
        raise InvalidRequest(
            "range too long", [ErrorDetail("to", f"at most {MAX_MONTHS} months from `from`")]
        )
    return ports.store.usage(tenant, first, last)


def money(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"


def _full(job: Job, budget: Budget, month: UsageMonth, estimate: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"tenant {job.tenant} is at its {month.month} budget",
        [
            ErrorDetail(
                "budget",
                f"{money(budget.monthly_usd)} a month; {money(usd(month.committed))} committed in "
                f"{month.month} (spent {money(usd(month.spent))}, reserved by unfinished jobs "
                f"{money(usd(month.reserved))}); this {job.job_type} job may cost up to "
                f"{money(usd(estimate))}",
            )
        ],
    )


def hold_for(ports: Ports, job: Job, *, month: str | None = None) -> tuple[Job, BudgetHold | None]:
    """The job carrying its reservation in `month` (default: its created month; a release reserves
    in its own) with, at the threshold, the month's alert, and the hold its write makes; the job as
    it is when its tenant has no budget. BudgetExceeded when the month, as read, has no room."""
    budget = ports.policy.budgets.of(job.tenant)
    if budget is None:
        return job, None
    estimate = micros(admission_estimate(pricing_of(ports), job_type_of(ports.policy, job.job_type), job))
    limit = micros(budget.monthly_usd)
    usage = month_usage(ports, job.tenant, month or month_of(job.created_at))
    # More than the whole month: no write could hold it (an empty month has no count to refuse it).
    # A release also stops here when the month, as read, is full: no write to have refused.
    if estimate > limit or (month is not None and usage.committed + estimate > limit):
        raise _full(job, budget, usage, estimate)
    alert = not usage.alerted and usage.committed + estimate >= budget.alert_at * limit
    book = CostBook(reserved=estimate, month=usage.month)
    held = job.model_copy(update={"cost_book": book})
    if alert:
        share = (usage.committed + estimate) / limit
        held = owing(
            held,
            alert=f"tenant {job.tenant} has committed {share:.0%} of its {usage.month} budget "
            f"({money(budget.monthly_usd)}; alert at {budget.alert_at:.0%})",
        )
    return held, BudgetHold(month=usage.month, amount=estimate, room=limit - estimate, alert=alert)


def unreserved(job: Job) -> bool:
    """A job that holds no reservation (held for its budget, or admitted before its tenant had one):
    its release reserves, in the release's month."""
    return job.cost_book.reserved == 0 and job.cost_book.month is None


def budget_hold_reason(ports: Ports, tenant: str, month: str) -> str:
    """Why a file drop waits HELD for its tenant's budget (a budget exists: the drop was refused)."""
    budget = ports.policy.budgets.of(tenant)
    amount = money(budget.monthly_usd) if budget is not None else "(none)"
    return f"monthly budget {amount} of tenant {tenant} reached for {month}"


def refusal(ports: Ports, job: Job, hold: BudgetHold) -> BudgetExceeded | None:
    """After a hold was refused: the 429 when the month is full, None when only its alert flag moved
    meanwhile (another submission raised the alert; try again)."""
    month = month_usage(ports, job.tenant, hold.month)
    budget = ports.policy.budgets.of(job.tenant)
    if budget is not None and month.committed > hold.room:
        return _full(job, budget, month, hold.amount)
    return None
