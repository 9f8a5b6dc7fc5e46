"""A tenant's in-flight count per job type and its queue of held jobs: their items, and the parts of
the transactions that move them (a job's creation, release, finish and cancel: adapters/store.py).

    pk                     sk                        what
    TENANT#<tenant>        INFLIGHT#<job_type>       `in_flight`: the type's jobs in flight, within the
                                                     policy's limit; `held`: how many of its jobs wait HELD
    HELD#<tenant>#<type>   <created_at>#<job_id>     a HELD job's place in its queue, oldest first (in no
                                                     index, so a consistent Query reads the queue as it is)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from batchplane.models.job import JobStatus
from batchplane.models.time import to_iso
from batchplane.service.ports import Quota

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from batchplane.models.job import Job


def counter_key(tenant: str, job_type: str) -> dict[str, Any]:
    return {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": f"INFLIGHT#{job_type}"}}


def count_in(
    table: str, tenant: str, job_type: str, limit: int, *, behind_held: bool = False
) -> TransactWriteItemTypeDef:
    """Take a slot within `limit`. `behind_held`: not while jobs of the type are held (a new job does
    not pass them; a freed slot is theirs, oldest first). The old count comes back on a refusal."""
    condition = "(attribute_not_exists(in_flight) OR in_flight < :limit)"
    values = {":one": {"N": "1"}, ":limit": {"N": str(limit)}}
    if behind_held:
        condition += " AND (attribute_not_exists(held) OR held <= :zero)"
        values[":zero"] = {"N": "0"}
    return {
        "Update": {
            "TableName": table,
            "Key": counter_key(tenant, job_type),
            "UpdateExpression": "ADD in_flight :one",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


_ONE = {"N": "1"}


def count_held(table: str, tenant: str, job_type: str, limit: int | None) -> TransactWriteItemTypeDef:
    """One more held job, only while the type is full or others are held already: a job is never held
    when a slot is free for it (the releaser might have looked before it was held). `limit` None: held
    for its budget, whatever the slots (its release waits for the month's room, not a slot)."""
    update: dict[str, Any] = {
        "TableName": table,
        "Key": counter_key(tenant, job_type),
        "UpdateExpression": "ADD held :one",
        "ExpressionAttributeValues": {":one": _ONE},
    }
    if limit is not None:
        update["ConditionExpression"] = "in_flight >= :limit OR held > :zero"
        update["ExpressionAttributeValues"].update({":zero": {"N": "0"}, ":limit": {"N": str(limit)}})
    return cast("TransactWriteItemTypeDef", {"Update": update})


def count_released(table: str, tenant: str, job_type: str, limit: int) -> TransactWriteItemTypeDef:
    """A held job takes a slot within `limit`: in flight one more, held one fewer."""
    return {
        "Update": {
            "TableName": table,
            "Key": counter_key(tenant, job_type),
            "UpdateExpression": "ADD in_flight :one, held :minus_one",
            "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight < :limit",
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":minus_one": {"N": "-1"},
                ":limit": {"N": str(limit)},
            },
        }
    }


def count_unheld(table: str, tenant: str, job_type: str) -> TransactWriteItemTypeDef:
    """A held job finished without a slot (cancelled)."""
    return _one_fewer(table, tenant, job_type, "held")


def held_key(job: Job) -> dict[str, Any]:
    """A HELD job's place in its tenant's queue for its type: created order, oldest first. Not in any
    index (no gsi keys), so a consistent Query of the partition reads the queue as it is."""
    return {
        "pk": {"S": held_partition(job.tenant, job.job_type)},
        "sk": {"S": f"{to_iso(job.created_at)}#{job.job_id}"},
    }


def held_partition(tenant: str, job_type: str) -> str:
    return f"HELD#{tenant}#{job_type}"


def oldest_held_query(table: str, tenant: str, job_type: str, limit: int) -> dict[str, Any]:
    """Query's arguments for the first `limit` places of a held queue: a consistent read of the queue
    as it is, oldest first."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": held_partition(tenant, job_type)}},
        "ConsistentRead": True,
        "Limit": limit,
    }


def put_held(table: str, job: Job) -> TransactWriteItemTypeDef:
    return {"Put": {"TableName": table, "Item": {**held_key(job), "job_id": {"S": job.job_id}}}}


def delete_held(table: str, job: Job) -> TransactWriteItemTypeDef:
    return {"Delete": {"TableName": table, "Key": held_key(job)}}


def count_out(table: str, tenant: str, job_type: str) -> TransactWriteItemTypeDef:
    """An in-flight job finished: its slot is free."""
    return _one_fewer(table, tenant, job_type, "in_flight")


def _one_fewer(table: str, tenant: str, job_type: str, count: str) -> TransactWriteItemTypeDef:
    return {
        "Update": {
            "TableName": table,
            "Key": counter_key(tenant, job_type),
            "UpdateExpression": f"ADD {count} :minus_one",
            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
        }
    }


def count_change(table: str, before: Job, after: Job, limit: int) -> TransactWriteItemTypeDef | None:
    """How a save moves the tenant's count: a slot taken or given back, a held job gone."""
    tenant, job_type = after.tenant, after.job_type
    if before.status.is_in_flight == after.status.is_in_flight:
        if before.status is JobStatus.HELD and after.status is not JobStatus.HELD:
            return count_unheld(table, tenant, job_type)  # cancelled while held
        return None
    if not after.status.is_in_flight:
        return count_out(table, tenant, job_type)
    if before.status is JobStatus.HELD:
        return count_released(table, tenant, job_type, limit)
    return count_in(table, tenant, job_type, limit)


def quota_of(item: dict[str, Any]) -> Quota:
    """The tenant's count for a job type from its item (none yet: nothing in flight or held)."""
    return Quota(
        in_flight=int(item.get("in_flight", {}).get("N", "0")), held=int(item.get("held", {}).get("N", "0"))
    )
