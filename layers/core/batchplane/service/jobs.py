"""Use cases of the REST API: submit, read, list, cancel and retry a tenant's jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchplane.errors import (
    BudgetExceeded,
    ConcurrentUpdate,
    ErrorDetail,
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    QuotaExceeded,
)
from batchplane.lifecycle import transitions
from batchplane.lifecycle.classify import CANCEL_REASON_PREFIX
from batchplane.lifecycle.outbox import owing
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.inputs import Area
from batchplane.models.job import CostBook, Job, JobStatus
from batchplane.models.outbox import JobEventType
from batchplane.models.request import JobRequest
from batchplane.observability import logger, metric
from batchplane.policy.admission import admit, check_inputs, job_type_of
from batchplane.policy.cost import month_of
from batchplane.policy.inputs import StackBuckets, areas_for
from batchplane.policy.routing import child_job_id
from batchplane.service import costs
from batchplane.service.conflicts import retry_on_conflict
from batchplane.service.ports import (
    ArtifactPage,
    BudgetFull,
    KeyAlreadyUsed,
    ObjectVersion,
    Page,
    Ports,
    SlotFree,
    UsePage,
)

# A job to be held that finds a slot free, then admitted that finds it taken, ... tries this often
# before the caller is told to try again (each turn means other jobs took or freed slots meanwhile).
_HOLD_TURNS = 5


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool  # True: the Idempotency-Key had made this job before; nothing was written


def submit(
    ports: Ports,
    request: JobRequest,
    latest_object: ObjectVersion | None = None,
    *,
    hold_over_limit: bool = False,
    hold_over_budget: bool = False,
) -> Submitted:
    """Admit, record (QUEUED) and queue the first attempt; a replayed key returns the first job.

    Over the tenant's in-flight limit (or behind its held jobs of the type) the request is refused
    with QuotaExceeded, or, with `hold_over_limit`, recorded HELD: released, oldest first, as slots
    free (service/held.py), with its idempotency key and object sequencer kept from now on. Over its
    monthly budget: BudgetExceeded, or, with `hold_over_budget` (file drops), HELD without a slot or
    a reservation, released when the month has room (service/held.py reserves then)."""
    admitted = admit(ports.policy, request, job_id=ports.new_id(), now=ports.clock(), buckets=_buckets(ports))
    limit = job_type_of(ports.policy, admitted.job_type).admission.max_in_flight_per_tenant
    fingerprint = request.fingerprint()
    try:
        created = _create(
            ports,
            admitted,
            fingerprint,
            limit,
            latest_object,
            hold_over_limit=hold_over_limit,
            hold_over_budget=hold_over_budget,
        )
    except KeyAlreadyUsed as used:
        if used.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "Idempotency-Key was already used with a different request",
                [ErrorDetail("Idempotency-Key", f"already used for job {used.job_id} with another body")],
            ) from None
        existing = ports.store.get(used.job_id)
        if existing is None:
            raise JobNotFound(f"job {used.job_id} of this Idempotency-Key no longer exists") from None
        return Submitted(existing, replayed=True)
    if created.status is JobStatus.HELD:
        metric("JobsHeld", job_type=created.job_type)
        logger.info(
            "job held",
            extra={"job_id": created.job_id, "tenant": created.tenant, "reason": created.held_reason},
        )
        return Submitted(created, replayed=False)
    ports.dispatch.send(DispatchMessage.next_attempt_of(created))
    metric("JobsAccepted")
    return Submitted(created, replayed=False)


# A budget's reservation can be refused because another submission raised the month's alert
# meanwhile; that one is tried again with the month as it now is.
BUDGET_TRIES = 3


def _create(
    ports: Ports,
    admitted: Job,
    fingerprint: str,
    limit: int,
    latest_object: ObjectVersion | None,
    *,
    hold_over_limit: bool,
    hold_over_budget: bool,
) -> Job:
    """Write the job; with a budget, reserve its estimate in the same write (service/costs.py)."""
    for _ in range(BUDGET_TRIES):
        try:
            job, reservation = costs.hold_for(ports, admitted)
        except BudgetExceeded:
            if not hold_over_budget:
                raise
            return _hold_for_budget(
                ports, admitted, limit, fingerprint=fingerprint, latest_object=latest_object
            )
        try:
            return _take_slot_or_hold(
                ports,
                job,
                limit=limit,
                hold_over_limit=hold_over_limit,
                reserve_held=not hold_over_budget,
                fingerprint=fingerprint,
                latest_object=latest_object,
                budget=reservation,
            )
        except BudgetFull:
            refused = costs.refusal(ports, job, reservation) if reservation is not None else None
            if refused is not None and hold_over_budget:
                return _hold_for_budget(
                    ports, admitted, limit, fingerprint=fingerprint, latest_object=latest_object
                )
            if refused is not None:
                raise refused from None
    raise ConcurrentUpdate("the tenant's budget changed concurrently; try again")


def _hold_for_budget(ports: Ports, job: Job, limit: int, **written: Any) -> Job:
    """The job written HELD for its month's budget: no slot, no reservation, in its type's held
    queue (behind any held before it; a release reserves in its own month, service/held.py)."""
    reason = costs.budget_hold_reason(ports, job.tenant, month_of(job.created_at))
    held = transitions.hold(job, reason=reason)
    ports.store.create(held, in_flight_limit=limit, over_budget=True, **written)
    return held


def _take_slot_or_hold(
    ports: Ports,
    job: Job,
    *,
    limit: int,
    hold_over_limit: bool,
    reserve_held: bool = True,
    **written: Any,
) -> Job:
    """The job written QUEUED, taking a slot; or, over the limit and asked to, HELD without one (its
    budget reservation, if any, made either way: a held REST job will run). `reserve_held` False (file
    drops): a held job reserves nothing, its release does, so a drop queued behind one held for the
    budget cannot take the room that one waits for. `written`: the rest of what the creating write
    carries (fingerprint, latest object, budget reservation)."""
    held_written = written if reserve_held else {**written, "budget": None}
    unbooked = job if reserve_held else job.model_copy(update={"cost_book": CostBook(), "outbox": []})
    for _ in range(_HOLD_TURNS):
        try:
            ports.store.create(job, in_flight_limit=limit, **written)
            return job
        except QuotaExceeded as full:
            if not hold_over_limit:
                raise
            reason = f"in-flight limit {limit} of {job.job_type} reached"
            if full.held_ahead:  # the type may have a free slot: the jobs held ahead have it first
                reason = f"behind {full.held_ahead} held {job.job_type} jobs (oldest first)"
        held = transitions.hold(unbooked, reason=reason)
        try:
            ports.store.create(held, in_flight_limit=limit, **held_written)
            return held
        except SlotFree:
            continue  # a slot freed since the first try, and nothing is held: admit it
    raise ConcurrentUpdate(f"the {job.job_type} slots of tenant {job.tenant} kept changing; try again")


def _buckets(ports: Ports) -> StackBuckets:
    return StackBuckets(ingest=ports.ingest_bucket, artifacts=ports.artifact_bucket)


def input_areas(ports: Ports, tenant: str) -> list[Area]:
    """Where the tenant's inputs may come from, with this stack's bucket names."""
    return areas_for(ports.policy.inputs, tenant, _buckets(ports))


def get_job(ports: Ports, tenant: str, job_id: str) -> Job:
    job = ports.store.get(job_id)
    # Another tenant's job does not exist, as far as this caller can tell: 404, not 403.
    if job is None or job.tenant != tenant:
        raise JobNotFound(f"job {job_id} not found", [ErrorDetail("job_id", "no such job")])
    return job


def list_jobs(
    ports: Ports,
    tenant: str,
    *,
    limit: int,
    status: JobStatus | None,
    job_type: str | None,
    next_token: str | None,
) -> Page:
    return ports.store.list_for_tenant(
        tenant, limit=limit, status=status, job_type=job_type, next_token=next_token
    )


def job_artifacts(
    ports: Ports, tenant: str, job: Job, *, limit: int, next_token: str | None = None
) -> ArtifactPage:
    """The artifacts recorded beside a job the caller owns (its inputs are on the job itself)."""
    if job.tenant != tenant:  # the caller got the job through get_job; this keeps it that way
        raise JobNotFound(f"job {job.job_id} not found", [ErrorDetail("job_id", "no such job")])
    return ports.store.artifacts(job.job_id, limit=limit, next_token=next_token)


MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes


def artifact_lineage(
    ports: Ports, tenant: str, uri: str, *, limit: int, next_token: str | None = None
) -> UsePage:
    """Which of the tenant's jobs, and which attempts, read or wrote the object at `uri`."""
    _, _, key = uri.removeprefix("s3://").partition("/")
    if len(key.encode()) > MAX_KEY_BYTES:
        # No object has such a key; and DynamoDB would refuse it as a partition key (2,048 bytes).
        raise InvalidRequest(
            "not an S3 object's URI", [ErrorDetail("uri", f"an S3 key is at most {MAX_KEY_BYTES} bytes")]
        )
    return ports.store.artifact_uses(tenant, uri, limit=limit, next_token=next_token)


def _change(
    ports: Ports, tenant: str, job_id: str, change: Callable[[Job], tuple[Job, int | None]]
) -> tuple[Job, Job]:
    """Read, change, write with a version guard; re-read when another writer came first."""

    def once() -> tuple[Job, Job]:
        before = get_job(ports, tenant, job_id)
        after, limit = change(before)
        return before, ports.store.save(after, previous=before, in_flight_limit=limit)

    return retry_on_conflict(once)


def _unless_changed(job: Job, only_if: Callable[[Job], bool] | None) -> None:
    """A bulk operation's check on the job as read for the write: it still takes the job."""
    if only_if is not None and not only_if(job):
        raise InvalidTransition(
            f"job {job.job_id} no longer matches the operation",
            [ErrorDetail("status", f"{job.status.value} since {job.updated_at.isoformat()}")],
        )


def cancel_job(
    ports: Ports,
    tenant: str,
    job_id: str,
    requested_by: str,
    *,
    only_if: Callable[[Job], bool] | None = None,
) -> Job:
    """Mark the job CANCELLED (owing its "Job Cancelled" event), then stop its Batch job, if it has one,
    so nothing runs on.

    A cancel sent again finds the job CANCELLED (409): when the first was cut short between its write
    and TerminateJob (it died, or Batch throttled it), the Batch job may still run, so it is stopped
    before the 409 goes out. TerminateJob of a job that has ended changes nothing. With `only_if`, a job
    it refuses is left as it is (InvalidTransition)."""
    now = ports.clock()

    def cancel(job: Job) -> tuple[Job, int | None]:
        _unless_changed(job, only_if)
        cancelled = transitions.cancel(job, now=now, requested_by=requested_by)
        return owing(cancelled, job_event=JobEventType.CANCELLED), None

    try:
        before, cancelled = _change(ports, tenant, job_id, cancel)
    except InvalidTransition:
        job = get_job(ports, tenant, job_id)
        if job.status is JobStatus.CANCELLED:
            _stop_batch_job(ports, job, requested_by)
        raise
    _stop_batch_job(ports, before, requested_by)
    return cancelled


def _stop_batch_job(ports: Ports, job: Job, requested_by: str) -> None:
    attempt = job.current_attempt
    if attempt is None or attempt.status.is_terminal:
        return
    if attempt.batch_job_id:
        batch_ids = [attempt.batch_job_id]
    elif attempt.array_name is not None and attempt.array_index is not None:
        # An array child: its own id only (by name would find the parent, and end every child). An
        # array not submitted yet has no child to stop: its first event finds the job cancelled.
        parent = ports.arrays.parent_of(attempt.array_name)
        batch_ids = [child_job_id(parent, attempt.array_index)] if parent else []
    else:
        batch_ids = [ref.job_id for ref in ports.batch.find_by_name(attempt.queue, attempt.job_name)]
    for batch_job_id in batch_ids:
        ports.batch.terminate(batch_job_id, f"{CANCEL_REASON_PREFIX}: requested by {requested_by}")


def retry_job(
    ports: Ports,
    tenant: str,
    job_id: str,
    requested_by: str,
    *,
    only_if: Callable[[Job], bool] | None = None,
) -> Job:
    """Queue a new attempt of a FAILED or CANCELLED job; it counts against the in-flight limit again.
    With `only_if`, a job it refuses is left as it is (InvalidTransition)."""
    now = ports.clock()

    def queue_again(job: Job) -> tuple[Job, int | None]:
        _unless_changed(job, only_if)
        # The policy's input sources may have narrowed since the job was admitted.
        check_inputs(ports.policy, job.tenant, job.parameters, job.inputs, _buckets(ports))
        limit = job_type_of(ports.policy, job.job_type).admission.max_in_flight_per_tenant
        return owing(transitions.manual_retry(job, now=now, requested_by=requested_by)), limit

    _, queued = _change(ports, tenant, job_id, queue_again)
    ports.dispatch.send(DispatchMessage.next_attempt_of(queued))
    return queued
