"""Use cases of the operator's view: whose jobs a caller may read (its own, or as an operator named in
the policy, one tenant's or every tenant's unfinished ones), a listing of them and their summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from batchplane.errors import ErrorDetail, InvalidRequest, TenantNotAllowed
from batchplane.lifecycle.summary import Summary, summarize
from batchplane.models.job import JobStatus
from batchplane.service.ports import Page, Ports

ALL_TENANTS = None  # a scope: every tenant's unfinished jobs
# A summary reads at most this many jobs (index entries, then BatchGetItem: ~0.5 read units a job).
SUMMARY_MOST_JOBS = 1000
SUMMARY_DEFAULT_SPAN = timedelta(hours=24)
SUMMARY_LONGEST_SPAN = timedelta(days=31)


def scope_of(
    ports: Ports, caller: str, principal: str, *, tenant: str | None, all_tenants: bool
) -> str | None:
    """The tenant whose jobs are read (None: every tenant's). A caller reads its own jobs; another
    tenant's, or everyone's, only if the policy names it among `api.operators` (403 naming the field)."""
    if tenant is not None and all_tenants:
        raise InvalidRequest(
            "tenant and all_tenants exclude each other",
            [ErrorDetail("all_tenants", "not with tenant: name one tenant, or ask for all")],
        )
    if not all_tenants:
        return tenant_of(ports, caller, principal, tenant)
    _operator_only(ports, caller, principal, "all_tenants")
    return ALL_TENANTS


def tenant_of(ports: Ports, caller: str, principal: str, tenant: str | None) -> str:
    """The one tenant whose jobs are read: the caller's own, or the one an operator names."""
    if tenant in (None, caller):
        return caller
    _operator_only(ports, caller, principal, "tenant")
    return tenant


def _operator_only(ports: Ports, caller: str, principal: str, field: str) -> None:
    if not ports.policy.api.is_operator(caller, principal):
        raise TenantNotAllowed(
            "only an operator reads other tenants' jobs",
            [ErrorDetail(field, f"{caller!r} is not among the policy's api.operators")],
        )


def list_jobs(
    ports: Ports,
    scope: str | None,
    *,
    limit: int,
    status: JobStatus | None,
    job_type: str | None,
    next_token: str | None,
) -> Page:
    """A tenant's jobs, or every tenant's unfinished ones: the only ones an index spans across tenants
    (by_activity); a finished status is asked of one tenant."""
    if scope is not ALL_TENANTS:
        return ports.store.list_for_tenant(
            scope, limit=limit, status=status, job_type=job_type, next_token=next_token
        )
    if status is not None and status.is_terminal:
        raise InvalidRequest(
            "all_tenants lists unfinished jobs",
            [ErrorDetail("status", f"{status.value} is finished: ask one tenant's (tenant=) for it")],
        )
    return ports.store.list_active(limit=limit, status=status, job_type=job_type, next_token=next_token)


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


def window_of(ports: Ports, since: datetime | None, until: datetime | None) -> Window:
    """[from, to): `to` defaults to now, `from` to a day before `to`; at most 31 days."""
    end = until or ports.clock()
    start = since or end - SUMMARY_DEFAULT_SPAN
    if start >= end:
        raise InvalidRequest("an empty window", [ErrorDetail("from", "must be before to")])
    if end - start > SUMMARY_LONGEST_SPAN:
        raise InvalidRequest("a window too long", [ErrorDetail("from", "at most 31 days before to")])
    return Window(start, end)


@dataclass(frozen=True)
class Overview:
    window: Window
    summary: Summary
    complete: bool  # False: more than SUMMARY_MOST_JOBS jobs were made in the window; the newest counted


def summary(ports: Ports, scope: str | None, window: Window) -> Overview:
    """The jobs created in the window (a tenant's, or every tenant's unfinished ones), at most
    SUMMARY_MOST_JOBS of them, newest first: counts by state, retries by class, Spot fallbacks."""
    jobs, complete = ports.store.created_between(scope, window.since, window.until, most=SUMMARY_MOST_JOBS)
    return Overview(window=window, summary=summarize(jobs), complete=complete)
