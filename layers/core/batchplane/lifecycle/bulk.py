"""Bulk cancel and bulk retry: which of a tenant's jobs an operation takes, and what became of each.

An operation takes a snapshot at `as_of`, fixed by its first call: jobs created by then, in a status
the action applies to, that matched then and still match when each is changed. A retry takes only
jobs finished by `as_of`, so a job the operation retried that failed again afterwards is not retried
again by a later page or a repeat; a cancel leaves alone a job someone retried by hand since `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.lifecycle.transitions import RETRYABLE_BY_HAND
from batchplane.models.job import Job, JobStatus
from batchplane.models.time import to_iso


class BulkAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"

    @property
    def applies_to(self) -> frozenset[JobStatus]:
        """The statuses the action can change: every unfinished one, or the two a retry leaves."""
        if self is BulkAction.CANCEL:
            return frozenset(s for s in JobStatus if not s.is_terminal)
        return RETRYABLE_BY_HAND

    @property
    def history_event(self) -> str:
        """The event the per-job transition records (lifecycle/transitions.py)."""
        return "cancelled" if self is BulkAction.CANCEL else "retried"


class Outcome(StrEnum):
    CANCELLED = "cancelled"
    RETRIED = "retried"
    MATCHED = "matched"  # a dry run: the job would be cancelled or retried
    CHANGED = "changed"  # it changed since the operation began (or is gone): left alone
    OVER_LIMIT = "over_limit"  # a retry over the tenant's in-flight limit: the job stays as it was
    REFUSED = "refused"  # a retry whose inputs are no longer in the tenant's input sources

    @staticmethod
    def done(action: BulkAction) -> Outcome:
        return Outcome.CANCELLED if action is BulkAction.CANCEL else Outcome.RETRIED


@dataclass(frozen=True)
class Selection:
    """The jobs an operation takes: a tenant's, in `statuses`, of `job_type`, created in a range."""

    action: BulkAction
    statuses: frozenset[JobStatus]
    job_type: str | None
    created_from: datetime | None
    created_to: datetime | None
    as_of: datetime

    @property
    def created_until(self) -> datetime:
        """A job created after the snapshot is not the operation's."""
        return self.as_of if self.created_to is None else min(self.created_to, self.as_of)

    def selects(self, job: Job) -> bool:
        """Whether the job, as read now, is one of the operation's."""
        if job.status not in self.statuses or (self.job_type is not None and job.job_type != self.job_type):
            return False
        if job.created_at > self.created_until:
            return False
        if self.created_from is not None and job.created_at < self.created_from:
            return False
        if self.action is BulkAction.RETRY:
            return job.updated_at <= self.as_of  # finished before the operation began
        return not any(h.event == "retried" and h.at >= self.as_of for h in job.history)

    def acted_on(self, job: Job, marker: str) -> bool:
        """Whether this operation (its `marker` is in the requester it records) changed the job."""
        return any(
            h.event == self.action.history_event and h.at >= self.as_of and marker in h.reason
            for h in job.history
        )


def selection(
    action: BulkAction,
    *,
    statuses: list[JobStatus] | None,
    job_type: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    as_of: datetime,
) -> Selection:
    """The operation's selection, or 422 naming the filter's field: a status the action cannot
    change, a range that ends before it starts or starts after the operation."""
    wanted = frozenset(statuses) if statuses else action.applies_to
    details = [
        ErrorDetail(
            "filter.status",
            f"{status.value}: a {action.value} applies to {', '.join(sorted(action.applies_to))} only",
        )
        for status in sorted(wanted - action.applies_to)
    ]
    if created_from is not None and created_to is not None and created_to < created_from:
        details.append(ErrorDetail("filter.created_to", f"before created_from ({to_iso(created_from)})"))
    if created_from is not None and created_from > as_of:
        details.append(
            ErrorDetail("filter.created_from", f"after now ({to_iso(as_of)}): no job was created yet")
        )
    if details:
        raise InvalidRequest(f"the {action.value} filter does not select jobs it can change", details)
    return Selection(action, wanted, job_type, created_from, created_to, as_of)
