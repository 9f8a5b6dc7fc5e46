"""The earlier item layouts and their move into the current one (job_items.py, job_index.py):

- the first kept every attempt, all history and every output inside the job's item, and the index
  keys on it;
- the second kept the job bounded (attempts and older decisions beside it) but still carried the
  index keys on the job item, so every event rewrote three index entries.

The store moves a job on its first read; `batchplane migrate` moves them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from batchplane.adapters.dynamo_calls import CancellationReasons, is_cancelled_transaction, put_all
from batchplane.adapters.job_index import INDEX_KEYS, put_index
from batchplane.adapters.job_items import item_to_job, job_key, job_to_item, side_items
from batchplane.errors import ConcurrentUpdate
from batchplane.models.job import ArtifactRole, Job

if TYPE_CHECKING:
    from typing import Any

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from batchplane.adapters.store import DynamoJobStore


# The index keys the earlier layouts put on the job item: today's, and by_tenant's (since dropped).
EARLIER_INDEX_KEYS = ("gsi1pk", "gsi1sk", *INDEX_KEYS)


def is_current(item: dict[str, Any]) -> bool:
    """A job item of the current layout: its decisions counted, and no index key on it."""
    return "history_count" in item and "gsi1pk" not in item


def migrate_job(store: DynamoJobStore, client: DynamoDBClient, job_id: str) -> bool:
    """Rewrite a job of an earlier layout into the current one: its earlier attempts and older
    decisions beside it, its outputs as artifact items of its last attempt, its inputs' lineage, and
    its index keys on an index item of their own. False when it is in the current layout already, or
    gone. Safe to run again, and beside live traffic: the job item changes under its version guard
    (ConcurrentUpdate: run it again)."""
    table = store.table_name
    item = client.get_item(TableName=table, Key=job_key(job_id), ConsistentRead=True).get("Item")
    if item is None or is_current(item):
        return False
    job = item_to_job(item)
    guard = {
        "ConditionExpression": "version = :version",
        "ExpressionAttributeValues": {":version": item["version"]},
    }
    rewrite: TransactWriteItemTypeDef
    if "history_count" in item:  # the second layout: only the index keys move
        rewrite = {
            "Update": {
                "TableName": table,
                "Key": job_key(job_id),
                "UpdateExpression": "REMOVE " + ", ".join(EARLIER_INDEX_KEYS),
                **guard,  # type: ignore[typeddict-item]
            }
        }
    else:
        kept = _move_beside(store, client, job)
        rewrite = {"Put": {"TableName": table, "Item": job_to_item(kept, store.retention), **guard}}  # type: ignore[typeddict-item]
    try:
        client.transact_write_items(TransactItems=[rewrite, put_index(table, job, store.retention)])
    except ClientError as error:
        if is_cancelled_transaction(error) and CancellationReasons(error).failed(0):
            raise ConcurrentUpdate(f"job {job_id} changed while it was migrated") from error
        raise
    return True


def _move_beside(store: DynamoJobStore, client: DynamoDBClient, job: Job) -> Job:
    """The first layout's job, what no longer lives in its item written beside it first."""
    outputs = [a for a in job.artifacts if a.role is ArtifactRole.OUTPUT]
    last = job.current_attempt.number if job.current_attempt else 0
    moved = [a.model_copy(update={"attempt": a.attempt or last}) for a in outputs]
    store.record_artifacts(job.job_id, job.tenant, moved, job.updated_at)
    put_all(client, store.table_name, store.input_lineage(job))
    kept = job.model_copy(update={"artifacts": [a for a in job.artifacts if a.role is ArtifactRole.INPUT]})
    put_all(client, store.table_name, side_items(kept, None, job.updated_at, store.retention))
    return kept
