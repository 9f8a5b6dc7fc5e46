"""The job index: one small item per job that carries the keys of the table's two GSIs, so that the
job item itself, rewritten by every event, is in no index.

    pk          sk      what
    JOB#<id>    INDEX   job_id, job_type and the index keys:
                        gsi2pk/gsi2sk  by_tenant_status  TENANT#<t>#ACTIVE while unfinished,
                                                         TENANT#<t>#<status> once finished;
                                                         created_at#job_id
                        gsi3pk/gsi3sk  by_activity       ACTIVE#<shard>, created_at#job_id; only
                                                         while unfinished (a sparse index)
                        expires_at once finished, with the job

The item is written with the job (in its creating transaction), when it is queued again by hand
(in the same transaction as the job) and when it finishes (a write of its own right after the job's:
see DynamoJobStore._reindex); a progress event writes the job item only, so no index key moves and
no index entry is rewritten. Each index projects ALL of this item,
about 250 bytes: one write unit an entry. A listing reads the index, then the jobs it names
(BatchGetItem, 0.5 read units per job item up to 4 KB).

A tenant's whole listing (no status asked) is its four by_tenant_status partitions (ACTIVE and the
three finished statuses) read side by side and merged newest first, as the sweeper's shards are: an
index of its own for it (by_tenant, since dropped from the table) cost a write unit when
each job was made and another when it finished (its entry rewritten for `expires_at`), about $1.25
per million jobs, to save a few read units per listing page.

Items of the earlier layout carried the keys on the job item itself; they read the same here (the
index entry is then the job), and the store moves them into this layout on their first read.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from batchplane.adapters.dynamo_calls import decode_token, encode_token, get_all
from batchplane.adapters.index_tokens import (
    ACTIVE,
    active_before,
    active_token,
    open_position,
    position_token,
    tenant_before,
    tenant_binding,
    tenant_token,
)
from batchplane.adapters.job_items import expiry, item_to_job, to_av
from batchplane.models.job import Job, JobStatus
from batchplane.models.time import to_iso
from batchplane.service.ports import Page, UnfinishedChunk

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from batchplane.lifecycle.bulk import Selection

ACTIVITY_SHARDS = 8
INDEX_SK = "INDEX"
INDEX_KEYS = ("gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
# The by_tenant_status phases: every job of a tenant is in exactly one of these partitions.
PHASES = (ACTIVE, *sorted(status.value for status in JobStatus if status.is_terminal))
_PAGE_READ = 100  # index entries a Query reads at once when a filter may drop some (BatchGetItem's cap)


def activity_shard(job_id: str) -> str:
    return f"{ACTIVE}#{zlib.crc32(job_id.encode()) % ACTIVITY_SHARDS}"


def phase_partition(tenant: str, status: JobStatus) -> str:
    """The by_tenant_status partition of a status: each finished status has its own; every unfinished
    job shares ACTIVE, so an event that moves a job between unfinished states moves no key."""
    return _tenant_partition(tenant, status.value if status.is_terminal else ACTIVE)


def tenant_partitions(tenant: str) -> list[str]:
    """The by_tenant_status partitions that hold every job of a tenant."""
    return [_tenant_partition(tenant, phase) for phase in PHASES]


def _tenant_partition(tenant: str, phase: str) -> str:
    return f"{tenant_binding(tenant)}#{phase}"


def index_item(job: Job, retention: timedelta) -> dict[str, Any]:
    created = f"{to_iso(job.created_at)}#{job.job_id}"
    data: dict[str, Any] = {
        "pk": f"JOB#{job.job_id}",
        "sk": INDEX_SK,
        "job_id": job.job_id,
        "job_type": job.job_type,
        "gsi2pk": phase_partition(job.tenant, job.status),
        "gsi2sk": created,
        # The job's version it was written for: a late move never replaces a newer one's (see
        # DynamoJobStore._reindex).
        "version": job.version,
    }
    if job.status.is_terminal:
        data["expires_at"] = expiry(job.updated_at, retention)
    else:
        data["gsi3pk"] = activity_shard(job.job_id)
        data["gsi3sk"] = created
    return {k: to_av(v) for k, v in data.items()}


def put_index(table: str, job: Job, retention: timedelta) -> TransactWriteItemTypeDef:
    """The job's index entry as it stands: written whole (a Put costs what an Update of it would)."""
    return {"Put": {"TableName": table, "Item": index_item(job, retention)}}


def moves_index(before: Job, after: Job) -> bool:
    """Whether a save changes the job's index entry: only finishing, or becoming unfinished again."""
    return before.status.is_terminal != after.status.is_terminal


class IndexReader:
    """Jobs found through the index: a tenant's listing and the sweeper's unfinished jobs."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def jobs(self, entries: list[dict[str, Any]]) -> list[Job | None]:
        """The job of each index entry, in order; None for one whose job is gone (expired just now).
        An entry of the earlier layout is its job item already."""
        wanted = [e["pk"] for e in entries if e["sk"]["S"] == INDEX_SK]
        found = get_all(self._client, self._table, [{"pk": pk, "sk": {"S": "JOB"}} for pk in wanted])
        by_pk = {item["pk"]["S"]: item for item in found}
        jobs: list[Job | None] = []
        for entry in entries:
            item = entry if entry["sk"]["S"] == "JOB" else by_pk.get(entry["pk"]["S"])
            jobs.append(item_to_job(item) if item is not None else None)
        return jobs

    def page(
        self,
        tenant: str,
        *,
        limit: int,
        status: JobStatus | None,
        job_type: str | None,
        next_token: str | None,
    ) -> Page:
        """A tenant's jobs, newest first, optionally of one status and job type. A finished status has
        a partition of its own; an unfinished one is read from ACTIVE and filtered here; no status, all
        four partitions merged."""
        if status is None:
            return self._merged_page(
                "by_tenant_status",
                ("gsi2pk", "gsi2sk"),
                tenant_partitions(tenant),
                limit=limit,
                job_type=job_type,
                before=tenant_before(next_token, tenant) if next_token else None,
                token=lambda before: tenant_token(tenant, before),
                keep=lambda job: True,
            )
        pk_value = phase_partition(tenant, status)
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_tenant_status",
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk_value}},
            "ScanIndexForward": False,
        }
        if job_type is not None:
            query["FilterExpression"] = "job_type = :job_type"
            query["ExpressionAttributeValues"][":job_type"] = {"S": job_type}
        filtered = not status.is_terminal
        start = decode_token(next_token, "gsi2pk", pk_value) if next_token else None
        jobs: list[Job] = []
        while True:
            if start:
                query["ExclusiveStartKey"] = start
            # A filter drops entries: read a few pages' worth at once, up to what one BatchGetItem takes.
            count = min(_PAGE_READ, max(10, 4 * limit)) if filtered else limit - len(jobs)
            response = self._client.query(**query, Limit=count)
            entries = response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            read = [(e, j) for e, j in zip(entries, self.jobs(entries), strict=True) if j is not None]
            matching = [(e, j) for e, j in read if not filtered or j.status is status]
            room = limit - len(jobs)
            jobs.extend(job for _, job in matching[:room])
            if len(matching) > room:
                # The page ends inside what was read: the next one starts after its last job.
                last = matching[room - 1][0]
                start = {name: last[name] for name in ("pk", "sk", "gsi2pk", "gsi2sk")}
            if not start or len(jobs) == limit:
                return Page(jobs=jobs, next_token=encode_token(start) if start else None)

    def active_page(
        self, *, limit: int, status: JobStatus | None, job_type: str | None, next_token: str | None
    ) -> Page:
        """Every tenant's unfinished jobs, newest first: the sparse by_activity index, its shards read
        side by side and merged. The token is the sort key of the last job given."""
        return self._merged_page(
            "by_activity",
            ("gsi3pk", "gsi3sk"),
            [f"{ACTIVE}#{shard}" for shard in range(ACTIVITY_SHARDS)],
            limit=limit,
            job_type=job_type,
            before=active_before(next_token) if next_token else None,
            token=active_token,
            keep=lambda job: not job.status.is_terminal and (status is None or job.status is status),
        )

    def _merged_page(
        self,
        index: str,
        key: tuple[str, str],
        partitions: list[str],
        *,
        limit: int,
        job_type: str | None,
        before: str | None,
        token: Callable[[str], str],
        keep: Callable[[Job], bool],
    ) -> Page:
        """Up to `limit` jobs that `keep` takes from several partitions of an index, newest first
        (their sort keys, `created_at#job_id`, are unique across them); the token names the sort key
        of the last entry looked at."""
        jobs: list[Job] = []
        while True:
            wanted = limit - len(jobs)
            entries, boundary = self._merged_entries(
                index, key, partitions, count=wanted, job_type=job_type, before=before
            )
            for entry, job in zip(entries, self.jobs(entries), strict=True):
                before = entry[key[1]]["S"]
                if job is None or not keep(job):
                    continue
                jobs.append(job)
                if len(jobs) == limit:
                    return Page(jobs=jobs, next_token=token(before))
            if len(entries) == wanted:
                continue  # cut short at what was wanted: go on after the last one looked at
            if boundary is None:
                return Page(jobs=jobs, next_token=None)
            before = boundary  # every entry newer than where a partition stopped was looked at

    def _merged_entries(
        self,
        index: str,
        key: tuple[str, str],
        partitions: list[str],
        *,
        count: int,
        job_type: str | None,
        before: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `count` index entries older than `before`, newest first, and where the next read must
        start (None: every partition is read to its end). Each partition gives its newest `count`; of
        those, only what sorts at or after the oldest place a partition stopped reading is surely newer
        than anything not yet read."""
        pk_name, sk_name = key
        condition = f"{pk_name} = :partition" + (f" AND {sk_name} < :before" if before else "")
        values: dict[str, Any] = {":before": {"S": before}} if before else {}
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "ScanIndexForward": False,
            "Limit": max(count, 1),
        }
        if job_type is not None:
            query["FilterExpression"] = "job_type = :job_type"
            values[":job_type"] = {"S": job_type}
        found: list[dict[str, Any]] = []
        boundary: str | None = None
        for partition in partitions:
            response = self._client.query(
                **query,
                KeyConditionExpression=condition,
                ExpressionAttributeValues={**values, ":partition": {"S": partition}},
            )
            found.extend(response.get("Items", []))
            stopped = response.get("LastEvaluatedKey")
            if stopped is not None:
                boundary = max(boundary or "", stopped[sk_name]["S"])
        found = _each_once(found)
        found.sort(key=lambda e: e[sk_name]["S"], reverse=True)
        sure = [e for e in found if boundary is None or e[sk_name]["S"] >= boundary]
        return sure[:count], boundary

    def created_between(
        self, tenant: str | None, since: datetime, until: datetime, *, most: int
    ) -> tuple[list[Job], bool]:
        """The jobs created in [since, until), newest first, at most `most` of them, and whether that
        is all of them: a tenant's through its by_tenant_status partitions, every tenant's unfinished
        ones through by_activity. Reads index entries (~250 bytes) and then the jobs: bounded by `most`."""
        low, high = to_iso(since), to_iso(until)
        if tenant is not None:
            queries = [("by_tenant_status", "gsi2pk", "gsi2sk", p) for p in tenant_partitions(tenant)]
        else:
            queries = [("by_activity", "gsi3pk", "gsi3sk", f"{ACTIVE}#{s}") for s in range(ACTIVITY_SHARDS)]
        entries: list[dict[str, Any]] = []
        complete = True
        for index, pk_name, sk_name, pk_value in queries:
            response = self._client.query(
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression="#pk = :pk AND #sk BETWEEN :low AND :high",
                ExpressionAttributeNames={"#pk": pk_name, "#sk": sk_name},
                ExpressionAttributeValues={":pk": {"S": pk_value}, ":low": {"S": low}, ":high": {"S": high}},
                ScanIndexForward=False,
                Limit=most + 1,
            )
            items = response.get("Items", [])
            # Limit is most + 1 (at most ~250 KB of entries, under a Query's 1 MB): one more says "more".
            complete = complete and len(items) <= most
            entries.extend(items)
        sk_of = "gsi2sk" if tenant is not None else "gsi3sk"
        entries = _each_once(entries)
        entries.sort(key=lambda e: e[sk_of]["S"], reverse=True)
        complete = complete and len(entries) <= most
        jobs = [j for j in self.jobs(entries[:most]) if j is not None]
        if tenant is None:
            jobs = [j for j in jobs if not j.status.is_terminal]
        return jobs, complete

    def selected(self, tenant: str, selection: Selection, *, limit: int, position: str | None) -> Page:
        """Up to `limit` jobs `selection` takes, oldest first, and the position after the last: the
        by_tenant_status partition of each of its statuses in turn, within its created range (the
        sort key), of its job type (a filter on the entry); each job read is checked as it is now."""
        partitions = sorted({phase_partition(tenant, status) for status in selection.statuses})
        part, start = open_position(position, partitions)
        # Sort keys are "<created>#<job_id>": "$" sorts after "#", so the range ends after every job of
        # that instant; "0" is before every year.
        low = to_iso(selection.created_from) if selection.created_from else "0"
        high = to_iso(selection.created_until) + "$"
        jobs: list[Job] = []
        while part < len(partitions):
            query: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": "by_tenant_status",
                "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk BETWEEN :low AND :high",
                "ExpressionAttributeValues": {
                    ":pk": {"S": partitions[part]},
                    ":low": {"S": low},
                    ":high": {"S": high},
                },
                "Limit": min(_PAGE_READ, max(10, 2 * (limit - len(jobs)))),
            }
            if selection.job_type is not None:
                query["FilterExpression"] = "job_type = :job_type"
                query["ExpressionAttributeValues"][":job_type"] = {"S": selection.job_type}
            if start:
                query["ExclusiveStartKey"] = start
            response = self._client.query(**query)
            entries = response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            for at, (entry, job) in enumerate(zip(entries, self.jobs(entries), strict=True)):
                if job is None or not selection.selects(job):
                    continue
                jobs.append(job)
                if len(jobs) == limit:
                    if at == len(entries) - 1 and not start and part == len(partitions) - 1:
                        return Page(jobs=jobs, next_token=None)  # nothing is left to read
                    after = {name: entry[name] for name in ("pk", "sk", "gsi2pk", "gsi2sk")}
                    return Page(jobs=jobs, next_token=position_token(part, after))
            if not start:
                part, start = part + 1, None
        return Page(jobs=jobs, next_token=None)

    def unfinished(
        self, shard: int, *, after: str | None = None, chunk: int = 100, page_size: int | None = None
    ) -> Iterator[tuple[UnfinishedChunk, list[Job]]]:
        """One by_activity shard's unfinished jobs, `chunk` at a time (one BatchGetItem each), from the
        start or after the job a token names; each chunk with the token that goes on after it, and the
        finished jobs whose entries are still there (their finish did not move them).

        The Query pages as DynamoDB pages (1 MB of ~250-byte entries, ~4,000; `page_size` caps it) and
        only one page and one chunk of jobs are held at a time, however many jobs the shard has. The
        index keeps no time of the last change (it would move on every event), so every unfinished
        job is read and the caller decides which are quiet."""
        partition = f"{ACTIVE}#{shard}"
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by_activity",
            "KeyConditionExpression": "gsi3pk = :shard",
            "ExpressionAttributeValues": {":shard": {"S": partition}},
        }
        if page_size is not None:
            query["Limit"] = page_size
        if after is not None:
            query["ExclusiveStartKey"] = decode_token(after, "gsi3pk", partition)
        while True:
            response = self._client.query(**query)
            entries = response.get("Items", [])
            last_page = "LastEvaluatedKey" not in response
            for start in range(0, len(entries), chunk):
                part = entries[start : start + chunk]
                read = [j for j in self.jobs(part) if j is not None]
                end = last_page and start + chunk >= len(entries)
                last = part[-1]
                resume = None if end else encode_token({k: last[k] for k in ("pk", "sk", "gsi3pk", "gsi3sk")})
                unfinished = [j for j in read if not j.status.is_terminal]
                yield (
                    UnfinishedChunk(jobs=unfinished, resume=resume),
                    [j for j in read if j.status.is_terminal],
                )
            if last_page:
                if not entries:
                    yield UnfinishedChunk(jobs=[], resume=None), []  # the shard ends here: say so
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _each_once(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Index entries of partitions read one after another: a job whose entry moved between two of
    the reads (it finished) is in both; it is one job."""
    seen: set[str] = set()
    once = []
    for entry in entries:
        if entry["pk"]["S"] not in seen:
            seen.add(entry["pk"]["S"])
            once.append(entry)
    return once
