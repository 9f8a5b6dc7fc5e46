"""Bulk cancel and bulk retry of a tenant's jobs by filter, a page at a time.

Each call takes a page of the jobs the operation selects (lifecycle/bulk.py), oldest first, and
changes each through the per-job use case (`jobs.cancel_job`, `jobs.retry_job`: version guard,
in-flight limit, TerminateJob, dispatch message), so a bulk operation is exactly as safe as that
many single ones. Under its Idempotency-Key each page's plan (its job ids) is recorded before any
job is changed, and what became of each after: a repeated call answers from the record, and a call
cut short (a timeout, AWS busy) is finished by its repeat, which takes the same jobs and knows the
ones it changed already by the requester it recorded on them. A call stops taking jobs when its
time runs short and answers with a token to go on within the same page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from batchplane.errors import (
    ConcurrentUpdate,
    ErrorDetail,
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    QuotaExceeded,
)
from batchplane.lifecycle.bulk import BulkAction, Outcome, Selection, selection
from batchplane.models.job import JobStatus
from batchplane.models.time import to_iso
from batchplane.observability import logger
from batchplane.service import jobs
from batchplane.service.ports import OperationPage, Ports


def _bad_token() -> InvalidRequest:
    return InvalidRequest("invalid next_token", [ErrorDetail("next_token", "not a token of this operation")])


@dataclass(frozen=True)
class Cursor:
    """Where an operation goes on: its snapshot time, the page, how many of the page's jobs are done,
    and where the next page starts in the index."""

    as_of: datetime
    page: int
    offset: int = 0
    position: str | None = None

    def encode(self) -> str:
        plain = {"a": to_iso(self.as_of), "n": self.page, "o": self.offset, "p": self.position}
        return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()

    @staticmethod
    def decode(text: str) -> Cursor:
        try:
            plain = json.loads(base64.urlsafe_b64decode(text.encode()))
            cursor = Cursor(datetime.fromisoformat(plain["a"]), plain["n"], plain["o"], plain["p"])
        except (ValueError, binascii.Error, KeyError, TypeError) as error:
            raise _bad_token() from error
        if not isinstance(cursor.page, int) or not isinstance(cursor.offset, int):
            raise _bad_token()
        if cursor.page < 1 or cursor.offset < 0 or not isinstance(cursor.position, str | None):
            raise _bad_token()
        return cursor


@dataclass(frozen=True)
class BulkRequest:
    tenant: str
    requested_by: str
    action: BulkAction
    statuses: list[JobStatus] | None
    job_type: str | None
    created_from: datetime | None
    created_to: datetime | None
    dry_run: bool
    limit: int
    idempotency_key: str | None
    cursor: Cursor | None = None

    def fingerprint(self) -> str:
        """The operation's request, whatever page: a key used with another one is a conflict."""
        plain = [
            self.action.value,
            sorted(s.value for s in self.statuses or []),
            self.job_type,
            to_iso(self.created_from) if self.created_from else None,
            to_iso(self.created_to) if self.created_to else None,
            self.dry_run,
            self.limit,
        ]
        return hashlib.sha256(json.dumps(plain).encode()).hexdigest()

    @property
    def marker(self) -> str:
        """What the operation writes into each job's history with its requester: how a repeat knows
        the jobs it changed already. The same tenant and key name the same operation."""
        digest = hashlib.sha256(f"{self.tenant}\n{self.idempotency_key}".encode()).hexdigest()[:12]
        return f"bulk {self.action.value} {digest}"


@dataclass(frozen=True)
class BulkPage:
    action: BulkAction
    dry_run: bool
    as_of: datetime
    outcomes: list[tuple[str, Outcome]]
    next: Cursor | None
    replayed: bool  # True: answered from the record; nothing was changed by this call


def run(ports: Ports, request: BulkRequest, *, time_is_short: Callable[[], bool] = lambda: False) -> BulkPage:
    """One call of a bulk operation: 422 for a filter that selects nothing it could change, 409 for
    a key used with another request; otherwise the outcome of each job of (part of) a page."""
    cursor = request.cursor
    as_of = cursor.as_of if cursor else ports.clock()
    number = cursor.page if cursor else 1
    key = request.idempotency_key
    if request.dry_run or key is None:
        if not request.dry_run:
            raise InvalidRequest(
                "Idempotency-Key is required",
                [ErrorDetail("Idempotency-Key", "required unless dry_run: it makes a repeated call safe")],
            )
        chosen = _selection(request, as_of)
        page = ports.operations.select(
            request.tenant, chosen, limit=request.limit, position=cursor.position if cursor else None
        )
        following = Cursor(as_of, number + 1, position=page.next_token) if page.next_token else None
        outcomes = [(job.job_id, Outcome.MATCHED) for job in page.jobs]
        return BulkPage(request.action, True, as_of, outcomes, following, replayed=False)

    fingerprint = request.fingerprint()
    first = ports.operations.page(request.tenant, key, 1)
    if first is not None and first.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "Idempotency-Key was already used with a different request",
            [ErrorDetail("Idempotency-Key", "already used for another bulk operation")],
        )
    if cursor is None and first is not None:
        as_of = first.as_of  # a repeat of the first call keeps the operation's snapshot
    chosen = _selection(request, as_of)
    recorded = first if number == 1 else ports.operations.page(request.tenant, key, number)
    if recorded is None:
        found = ports.operations.select(
            request.tenant, chosen, limit=request.limit, position=cursor.position if cursor else None
        )
        plan = OperationPage(number, fingerprint, as_of, [job.job_id for job in found.jobs], found.next_token)
        recorded = ports.operations.plan(request.tenant, key, plan)
    offset = cursor.offset if cursor else 0
    done = [Outcome(outcome) for outcome in recorded.outcomes or []]
    replayed = len(done) > offset or (len(done) == len(recorded.job_ids) and recorded.outcomes is not None)
    if not replayed:
        for job_id in recorded.job_ids[len(done) :]:
            if done[offset:] and time_is_short():
                break
            done.append(_change(ports, request, chosen, job_id))
        ports.operations.finish(request.tenant, key, replace(recorded, outcomes=[o.value for o in done]))
        logger.info(
            "bulk operation page",
            extra={
                "action": request.action.value,
                "marker": request.marker,
                "page": number,
                "jobs": len(recorded.job_ids),
                "outcomes": {o.value: done.count(o) for o in set(done)},
            },
        )
    outcomes = list(zip(recorded.job_ids[offset : len(done)], done[offset:], strict=True))
    return BulkPage(request.action, False, as_of, outcomes, _after(recorded, len(done)), replayed)


def _selection(request: BulkRequest, as_of: datetime) -> Selection:
    return selection(
        request.action,
        statuses=request.statuses,
        job_type=request.job_type,
        created_from=request.created_from,
        created_to=request.created_to,
        as_of=as_of,
    )


def _after(page: OperationPage, done: int) -> Cursor | None:
    """The rest of the page, else the next page, else the end."""
    if done < len(page.job_ids):
        return Cursor(page.as_of, page.number, offset=done, position=page.next_position)
    if page.next_position is not None:
        return Cursor(page.as_of, page.number + 1, position=page.next_position)
    return None


def _change(ports: Ports, request: BulkRequest, chosen: Selection, job_id: str) -> Outcome:
    """One job through the per-job use case, if the operation still takes it as it is now."""
    requested_by = f"{request.requested_by} ({request.marker})"
    try:
        if request.action is BulkAction.CANCEL:
            jobs.cancel_job(ports, request.tenant, job_id, requested_by, only_if=chosen.selects)
        else:
            jobs.retry_job(ports, request.tenant, job_id, requested_by, only_if=chosen.selects)
    except QuotaExceeded:
        return Outcome.OVER_LIMIT
    except InvalidRequest:
        return Outcome.REFUSED  # its inputs are no longer in the tenant's input sources
    except (InvalidTransition, JobNotFound, ConcurrentUpdate):
        # Changed meanwhile; or changed by this very operation in a call cut short before its record.
        job = ports.store.get(job_id)
        mine = job is not None and job.tenant == request.tenant and chosen.acted_on(job, request.marker)
        return Outcome.done(request.action) if mine else Outcome.CHANGED
    return Outcome.done(request.action)
