"""The report routes: /summary (counts, retries and Spot fallbacks of the jobs made in a window) and
/usage (the caller's estimated spend by month)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from batchplane.api.openapi import responses
from batchplane.api.params import AllTenants, Tenant, caller_in, new_router, scope_read
from batchplane.api.schemas import SummaryView, Usage
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.policy.cost import month_of
from batchplane.service import costs, overview
from batchplane.wiring import ports

router = new_router()


@router.get(
    "/summary",
    summary="Counts by state, retries by failure class and Spot fallbacks of the jobs made in a window",
    operation_id="get_summary",
    responses=responses(200, "The summary of the jobs created in [from, to)"),
)
def get_summary(
    since: Annotated[
        datetime | None, Query(alias="from", description="ISO 8601; default a day before `to`")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="ISO 8601; default now")] = None,
    tenant: Tenant = None,
    all_tenants: AllTenants = False,
) -> SummaryView:
    scope = scope_read(router, tenant, all_tenants)
    window = overview.window_of(ports(), _aware(since, "from"), _aware(until, "to"))
    found = overview.summary(ports(), scope, window)
    summary = found.summary
    return SummaryView(
        tenant=scope,
        all_tenants=scope is None,
        since=window.since,
        until=window.until,
        jobs=summary.jobs,
        complete=found.complete,
        by_status=summary.by_status,
        retries_by_failure_class=summary.retries_by_failure_class,
        spot_fallbacks=summary.spot_fallbacks,
        jobs_fallen_back=summary.jobs_fallen_back[:20],
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidRequest("a time without its zone", [ErrorDetail(field, "give a UTC offset, e.g. Z")])
    return value


@router.get(
    "/usage",
    summary="The caller's estimated spend by month, job type and outcome",
    operation_id="get_usage",
    responses=responses(200, "The caller's usage from `from` to `to` (months; default: this month)"),
)
def get_usage(
    first: Annotated[
        str | None, Query(alias="from", pattern=costs.MONTH_PATTERN, description="first month, YYYY-MM")
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", pattern=costs.MONTH_PATTERN, description="last month, YYYY-MM (UTC)")
    ] = None,
) -> Usage:
    tenant = caller_in(router).tenant
    last = last or month_of(ports().clock())
    first = first or last
    budget = ports().policy.budgets.of(tenant)
    months = costs.usage(ports(), tenant, first, last)
    return Usage.of(first, last, months, budget.monthly_usd if budget else None, costs.pricing_of(ports()))
