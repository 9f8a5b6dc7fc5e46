"""The earlier item layout (every attempt, all history and every output inside the job's item), and
its move into the current one (job_items.py). The store moves a job on its first read;
`batchplane migrate` moves them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from batchplane.adapters.dynamo_calls import is_conditional_failure, put_all
from batchplane.adapters.job_items import item_to_job, job_key, job_to_item, side_items
from batchplane.errors import ConcurrentUpdate
from batchplane.models.job import ArtifactRole

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from batchplane.adapters.store import DynamoJobStore


def migrate_job(store: DynamoJobStore, client: DynamoDBClient, job_id: str) -> bool:
    """Rewrite a job of the earlier layout into the current one: its earlier attempts and older
    decisions beside it, its outputs as artifact items of its last attempt, its inputs' lineage.
    False when it is in the current layout already, or gone. Safe to run again, and beside live
    traffic: the job item is replaced under its version guard (ConcurrentUpdate: run it again)."""
    table = store.table_name
    item = client.get_item(TableName=table, Key=job_key(job_id), ConsistentRead=True).get("Item")
    if item is None or "history_count" in item:
        return False
    job = item_to_job(item)
    outputs = [a for a in job.artifacts if a.role is ArtifactRole.OUTPUT]
    last = job.current_attempt.number if job.current_attempt else 0
    moved = [a.model_copy(update={"attempt": a.attempt or last}) for a in outputs]
    store.record_artifacts(job.job_id, job.tenant, moved, job.updated_at)
    put_all(client, table, store.input_lineage(job))
    kept = job.model_copy(update={"artifacts": [a for a in job.artifacts if a.role is ArtifactRole.INPUT]})
    put_all(client, table, side_items(kept, None, job.updated_at, store.retention))
    try:
        client.put_item(
            TableName=table,
            Item=job_to_item(kept, store.retention),
            ConditionExpression="version = :version",
            ExpressionAttributeValues={":version": {"N": str(job.version)}},
        )
    except ClientError as error:
        if is_conditional_failure(error):
            raise ConcurrentUpdate(f"job {job_id} changed while it was migrated") from error
        raise
    return True
