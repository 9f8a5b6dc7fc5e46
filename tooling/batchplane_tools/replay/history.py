"""The recorded jobs, read from the jobs table with Scan and Query only: replay never writes.

A job item of an earlier layout is skipped and counted, not moved (`batchplane migrate` moves them;
the store's own read would move it on the spot, a write).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from batchplane.adapters.earlier_layout import is_current
from batchplane.adapters.job_items import item_to_job
from batchplane.models.job import Job

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass
class History:
    jobs: list[Job] = field(default_factory=list)
    earlier_layout: int = 0  # job items skipped: run `batchplane migrate` first to replay them


def _job_items(client: DynamoDBClient, table: str, tenant: str | None) -> Iterator[dict[str, Any]]:
    scan: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "sk = :job",
        "ExpressionAttributeValues": {":job": {"S": "JOB"}},
    }
    if tenant is not None:
        scan["FilterExpression"] += " AND tenant = :tenant"
        scan["ExpressionAttributeValues"][":tenant"] = {"S": tenant}
    for page in client.get_paginator("scan").paginate(**scan):
        yield from page.get("Items", [])


def _beside(client: DynamoDBClient, table: str, pk: str) -> list[dict[str, Any]]:
    """The job's earlier attempts and older decisions (as the store's `get` reads them)."""
    pages = client.get_paginator("query").paginate(
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk >= :from",
        ExpressionAttributeValues={":pk": {"S": pk}, ":from": {"S": "ATTEMPT#"}},
    )
    return [item for page in pages for item in page.get("Items", []) if item["sk"]["S"] != "JOB"]


def read_history(
    client: DynamoDBClient, table: str, *, since: datetime | None = None, tenant: str | None = None
) -> History:
    """Every recorded job (of `tenant`, created from `since` on), oldest first."""
    history = History()
    for item in _job_items(client, table, tenant):
        if not is_current(item):
            history.earlier_layout += 1
            continue
        job = item_to_job(item)
        if since is not None and job.created_at < since:
            continue
        history.jobs.append(item_to_job(item, _beside(client, table, item["pk"]["S"])))
    history.jobs.sort(key=lambda job: (job.created_at, job.job_id))
    return history
