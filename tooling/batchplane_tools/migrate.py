"""`batchplane migrate`: rewrite the jobs of the earlier item layouts into the current one, once.

The first layout kept every attempt, all history and every output in the job's own item, which
grew with the job until DynamoDB refused it (400 KB); the second kept the index keys on the job
item, so every event rewrote three index entries. The current layout (batchplane.adapters.job_items
and job_index) keeps a bounded job item in no index and a small index item beside it. The runtime
reads all three and moves a job on its first read; this command moves them all at once, with the
operator's credentials (it scans). Until it has run, a tenant's listings miss the unfinished jobs
not yet moved (they sit in their old status's partition, and by_tenant, which listed them all, is
gone); each is still read, swept and moved by its id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from batchplane.adapters.store import DynamoJobStore

# A job under live traffic may be written again while it is moved: a few more tries than a request's.
MIGRATE_TRIES = 5


@dataclass
class Migration:
    found: list[str] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)


def earlier_layout_jobs(client: DynamoDBClient, table: str) -> list[str]:
    """The ids of the job items without `history_count` or with index keys: the earlier layouts'."""
    found: list[str] = []
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :job AND (attribute_not_exists(history_count) OR attribute_exists(gsi1pk))",
        "ExpressionAttributeValues": {":job": {"S": "JOB"}},
        "ProjectionExpression": "pk",
    }
    while True:
        page = client.scan(**request)
        found.extend(item["pk"]["S"].removeprefix("JOB#") for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def migrate_table(
    client: DynamoDBClient, table: str, *, retention: timedelta, dry_run: bool = False
) -> Migration:
    """Move every earlier-layout job of `table` into the current layout (none with `dry_run`); the
    records it writes expire `retention` after (the stack's JobRetentionDays)."""
    from batchplane.adapters.store import DynamoJobStore

    report = Migration(found=earlier_layout_jobs(client, table))
    if dry_run:
        return report
    store = DynamoJobStore(table, client, retention=retention)
    report.migrated = [job_id for job_id in report.found if _moved(store, job_id)]
    return report


def _moved(store: DynamoJobStore, job_id: str) -> bool:
    """Move one job; a live write that came first (ConcurrentUpdate) is read again and moved then."""
    from batchplane.service.conflicts import retry_on_conflict

    return retry_on_conflict(lambda: store.migrate(job_id), tries=MIGRATE_TRIES)
