"""Held jobs released, oldest first, as their tenant's slots free.

A job over its tenant's in-flight limit is written HELD (service/jobs.py::submit): outside the count,
in a held queue per tenant and job type (adapters/quota_items.py::held_key), counted as `held` on the
tenant's quota item. Whoever sees a slot free calls `release_held`: the outbox function for every
write that takes a job out of flight (the finish, the cancel), and the sweeper for held jobs quiet
past StaleAfterSeconds, so none stays held when a release was lost.

Each release is one transaction (adapters/store.py::save): the job HELD -> QUEUED under its version
guard, the slot taken under the same limit condition as a new job's, its held-queue entry deleted.
Releasers side by side cannot admit a job twice (the version guard) nor over-admit (the limit); the
loser of a race moves on to the next job. Then the first attempt's dispatch message, the same as a
new job's; a releaser that dies before sending it leaves a QUEUED job, which the sweeper dispatches.

A job held for its tenant's monthly budget (a file drop over it, service/jobs.py) holds no
reservation; its release reserves the estimate in the same transaction, in the release's month, under
the same condition as a new job's (adapters/usage_items.py::reserve), so it is released once and never
over the budget. While the month has no room its queue waits: the job stays held and nothing behind it
passes (the next freed slot, finish or sweep tries again: a new month, a raised budget).
"""

from __future__ import annotations

from batchplane.errors import BudgetExceeded, ConcurrentUpdate, QuotaExceeded
from batchplane.lifecycle import transitions
from batchplane.lifecycle.outbox import owing
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import Job, JobStatus
from batchplane.models.outbox import OwedKind
from batchplane.observability import logger, metric
from batchplane.policy.cost import month_of
from batchplane.service import costs
from batchplane.service.ports import BudgetFull, Ports

# Held jobs read at a time: a Query of up to this many small entries (one read unit).
_READ_AT_ONCE = 25


def release_held(ports: Ports, tenant: str, job_type: str) -> list[Job]:
    """Release the tenant's oldest HELD jobs of a type into its free slots; the jobs released."""
    kind = ports.policy.job_types.get(job_type)
    if kind is None:
        return []  # the type left the policy: its held jobs wait for a cancel
    limit = kind.admission.max_in_flight_per_tenant
    released: list[Job] = []
    while True:
        quota = ports.store.quota(tenant, job_type)
        free = limit - quota.in_flight
        if quota.held <= 0 or free <= 0:
            return released
        taken = 0
        for job_id in ports.store.oldest_held(tenant, job_type, min(free, _READ_AT_ONCE)):
            try:
                job = _release(ports, job_id, limit)
            except QuotaExceeded:
                return released  # another writer took the last slot
            except (BudgetExceeded, BudgetFull):
                return released  # the month has no room: the queue waits, oldest first
            if job is not None:
                released.append(job)
                taken += 1
        if taken == 0:
            return released  # another releaser is taking these: it goes on from here


def _release(ports: Ports, job_id: str, limit: int) -> Job | None:
    """One HELD job QUEUED in a slot and dispatched; None when it is no longer held (released by
    another releaser, or cancelled, since the queue was read). BudgetExceeded or BudgetFull when it
    holds no reservation and its tenant's month has none to give."""
    held = ports.store.get(job_id)
    if held is None or held.status is not JobStatus.HELD:
        return None
    now = ports.clock()
    reason = f"a slot of the in-flight limit {limit} freed"
    booked, hold = held, None
    if costs.unreserved(held):
        booked, hold = costs.hold_for(ports, held, month=month_of(now))  # the month as it is now
    if hold is not None:
        reason = f"{reason} and the {hold.month} budget has room"
    # The month's alert, when this reservation raises it (a held job's own outbox was delivered).
    alert = next((o.subject for o in booked.outbox if o.kind is OwedKind.ALERT), None) if hold else None
    queued = owing(transitions.release(booked, now=now, reason=reason), alert=alert)
    try:
        saved = ports.store.save(queued, previous=held, in_flight_limit=limit, budget=hold)
    except ConcurrentUpdate:
        return None
    ports.dispatch.send(DispatchMessage.next_attempt_of(saved))
    metric("JobsReleased", job_type=saved.job_type)
    logger.info("held job released", extra={"job_id": job_id, "tenant": saved.tenant})
    return saved
