"""The transaction that makes a job: what it writes, and what each of its refusals means.

One TransactWriteItems (adapters/store.py::DynamoJobStore.create) writes the job, its index entry,
its Idempotency-Key, its tenant's count (a slot, or a place in the held queue), the object key's
newest sequencer for a file drop and the month's budget reservation, all or nothing. Which part's
condition failed says why the job was not made.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from batchplane.adapters.job_index import put_index
from batchplane.adapters.job_items import artifact_items, expiry, move_latest, put_key, put_new
from batchplane.adapters.quota_items import count_held, count_in, put_held
from batchplane.adapters.usage_items import reserve
from batchplane.errors import ErrorDetail, QuotaExceeded
from batchplane.models.job import ArtifactRole, Job, JobStatus
from batchplane.service.ports import BudgetFull, BudgetHold, ObjectVersion, SlotFree, StaleObject

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from batchplane.adapters.dynamo_calls import CancellationReasons


def creating_parts(
    table: str,
    job: Job,
    retention: timedelta,
    *,
    fingerprint: str,
    in_flight_limit: int,
    latest_object: ObjectVersion | None,
    budget: BudgetHold | None,
    over_budget: bool,
) -> dict[str, TransactWriteItemTypeDef]:
    """The transaction's parts by name, in their order: job, index, key, quota, held, object, budget
    (those that apply)."""
    parts: dict[str, TransactWriteItemTypeDef] = {
        "job": put_new(table, job),
        "index": put_index(table, job, retention),
    }
    if job.idempotency_key is not None:
        parts["key"] = put_key(table, job, job.idempotency_key, fingerprint)
    if job.status is JobStatus.HELD:
        # A HELD job takes no slot: it counts as held and takes its place in the queue; held for the
        # budget, whatever the slots.
        parts["quota"] = count_held(table, job.tenant, job.job_type, None if over_budget else in_flight_limit)
        parts["held"] = put_held(table, job)
    else:
        parts["quota"] = count_in(table, job.tenant, job.job_type, in_flight_limit, behind_held=True)
    if latest_object is not None:
        parts["object"] = move_latest(table, latest_object, job.job_id)
    if budget is not None:
        parts["budget"] = reserve(table, job.tenant, budget)
    return parts


def input_lineage(job: Job, retention: timedelta) -> list[dict[str, Any]]:
    """An input's item under its object: which of the tenant's jobs read it (attempt 0: every
    attempt). Its item under the job is the job item's own `artifacts`."""
    expires = expiry(job.created_at, retention)
    return [
        artifact_items(job.job_id, job.tenant, artifact, job.created_at, expires)[1]
        for artifact in job.artifacts
        if artifact.role is ArtifactRole.INPUT
    ]


def refusal(
    reasons: CancellationReasons,
    parts: list[str],
    job: Job,
    *,
    in_flight_limit: int,
    latest_object: ObjectVersion | None,
) -> Exception | None:
    """Why the transaction of `parts` was cancelled, as the error to raise; None when no part but
    the key (which needs the key's item: the store reads it) or none at all failed."""
    failed = {name for index, name in enumerate(parts) if reasons.failed(index)}
    if "object" in failed:
        return StaleObject(f"a newer version of {latest_object} was ingested already")
    if "quota" in failed:
        if job.status is JobStatus.HELD:
            return SlotFree(f"{job.job_type} of {job.tenant} has a free slot")
        held = int((reasons.item(parts.index("quota")) or {}).get("held", {}).get("N", "0"))
        return quota_exceeded(job.tenant, job.job_type, in_flight_limit, held)
    if "budget" in failed:
        return budget_full(job)
    return None


def quota_exceeded(tenant: str, job_type: str, limit: int, held: int = 0) -> QuotaExceeded:
    if held > 0:  # a slot may be free, but it is the held jobs' first
        return QuotaExceeded(
            f"tenant {tenant} has {held} {job_type} jobs held, waiting for a slot",
            [ErrorDetail("job_type", f"{held} {job_type} jobs held ahead (at most {limit} in flight)")],
            held_ahead=held,
        )
    return QuotaExceeded(
        f"tenant {tenant} has {limit} {job_type} jobs in flight",
        [ErrorDetail("job_type", f"at most {limit} {job_type} jobs in flight per tenant")],
    )


def budget_full(job: Job) -> BudgetFull:
    return BudgetFull(f"tenant {job.tenant}'s month has no room for job {job.job_id}")
