"""POST /bulk/cancel and POST /bulk/retry: the request and answer of a bulk operation's call."""

from __future__ import annotations

from collections import Counter
from typing import Self

from pydantic import AwareDatetime, ConfigDict, Field

from batchplane.api.page_tokens import TOKEN_PATTERN
from batchplane.lifecycle.bulk import BulkAction, Outcome
from batchplane.models.base import Model
from batchplane.models.job import JobStatus
from batchplane.models.time import UtcDatetime
from batchplane.service.bulk import BulkPage


class BulkFilter(Model):
    """Which of the caller's jobs: every field given must match; none given, every job the action
    can change (cancel: every unfinished one; retry: FAILED and CANCELLED)."""

    model_config = ConfigDict(extra="forbid")

    status: list[JobStatus] | None = Field(
        default=None,
        min_length=1,
        max_length=len(JobStatus),
        description="any of these statuses: unfinished ones for a cancel, FAILED or CANCELLED for a retry",
    )
    job_type: str | None = Field(default=None, min_length=1, max_length=64)
    created_from: AwareDatetime | None = Field(
        default=None, description="created at or after (ISO 8601, with zone)"
    )
    created_to: AwareDatetime | None = Field(
        default=None, description="created at or before (ISO 8601, with zone)"
    )


class BulkBody(Model):
    model_config = ConfigDict(extra="forbid")

    filter: BulkFilter
    dry_run: bool = Field(default=False, description="only count and list the matching jobs; writes nothing")
    limit: int | None = Field(
        default=None, ge=1, le=1000, description="jobs a call takes: at most 100 (default), 1000 in a dry run"
    )
    next_token: str | None = Field(
        default=None,
        max_length=6144,
        pattern=TOKEN_PATTERN,
        description="the `next_token` of the previous call of this operation (same key and body)",
    )


class BulkJobView(Model):
    job_id: str
    outcome: Outcome


class BulkCounts(Model):
    matched: int = Field(description="a dry run: jobs the operation would change")
    cancelled: int
    retried: int
    changed: int = Field(description="changed since the operation began, or gone: left alone")
    over_limit: int = Field(
        description="a retry over the tenant's in-flight limit: still FAILED or CANCELLED"
    )
    refused: int = Field(description="a retry whose inputs are no longer in the tenant's input sources")


class BulkResult(Model):
    """What one call did: each job it took, oldest first, and the token of the rest, if any."""

    action: BulkAction
    dry_run: bool
    as_of: UtcDatetime = Field(
        description="the operation's snapshot: jobs created or changed after it are not taken"
    )
    counts: BulkCounts
    jobs: list[BulkJobView]
    next_token: str | None

    @classmethod
    def of(cls, page: BulkPage, next_token: str | None) -> Self:
        counted = Counter(outcome for _, outcome in page.outcomes)
        return cls(
            action=page.action,
            dry_run=page.dry_run,
            as_of=page.as_of,
            counts=BulkCounts(**{outcome.value: counted[outcome] for outcome in Outcome}),
            jobs=[BulkJobView(job_id=job_id, outcome=outcome) for job_id, outcome in page.outcomes],
            next_token=next_token,
        )
