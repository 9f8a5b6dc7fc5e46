"""The job table's item layout: keys, index attributes, and conversions between Job and item.

Item layout (single table, keys `pk`/`sk`):

    JOB#<job_id>           / JOB                 the job; attempts as a map keyed by number
    IDEM#<tenant>#<key>    / IDEM                an Idempotency-Key and the job it made (TTL)
    TENANT#<tenant>        / INFLIGHT#<job_type> the tenant's in-flight counter for a job type
    OBJ#<bucket>#<key>     / LATEST              the newest S3 sequencer ingested for an object key

Indexes: `by_tenant` (gsi1: tenant, created_at#job_id) lists a tenant's jobs newest first;
`by_tenant_status` (gsi2: tenant#status, created_at#job_id) serves the status filter; `by_activity`
(gsi3: ACTIVE#<shard>, last_event_at#job_id) is sparse, holding only unfinished jobs, for the sweeper.
"""

from __future__ import annotations

import zlib
from datetime import timedelta
from decimal import Decimal
from functools import cache
from typing import Any, cast

from batchplane.models.job import AttemptStatus, Job, JobStatus
from batchplane.models.progress import Progress
from batchplane.models.time import to_iso

ACTIVITY_SHARDS = 8
IDEMPOTENCY_TTL = timedelta(days=7)


@cache
def _codec() -> tuple[Any, Any]:
    # boto3 (and s3transfer behind it) loads here, at first use, not at import: ~50 ms of cold start.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the domain has only ints."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_av(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], _codec()[0].serialize(value))


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def counter_key(tenant: str, job_type: str) -> dict[str, Any]:
    return {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": f"INFLIGHT#{job_type}"}}


def idempotency_key(tenant: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEM#{tenant}#{key}"}, "sk": {"S": "IDEM"}}


def activity_shard(job_id: str) -> str:
    return f"ACTIVE#{zlib.crc32(job_id.encode()) % ACTIVITY_SHARDS}"


def _created_sort_key(job: Job) -> str:
    return f"{to_iso(job.created_at)}#{job.job_id}"


def status_partition(tenant: str, status: JobStatus) -> str:
    return f"TENANT#{tenant}#{status.value}"


def job_to_item(job: Job) -> dict[str, Any]:
    data = job.model_dump(mode="json", exclude_none=True)
    data["attempts"] = {str(a["number"]): attempt_map(a) for a in data["attempts"]}
    data.update(
        pk=f"JOB#{job.job_id}",
        sk="JOB",
        gsi1pk=f"TENANT#{job.tenant}",
        gsi1sk=_created_sort_key(job),
        gsi2pk=status_partition(job.tenant, job.status),
        gsi2sk=_created_sort_key(job),
        attempt_count=len(job.attempts),
    )
    if not job.status.is_terminal:
        data["gsi3pk"] = activity_shard(job.job_id)
        data["gsi3sk"] = f"{to_iso(job.updated_at)}#{job.job_id}"
    return {k: to_av(v) for k, v in data.items()}


def attempt_map(attempt: dict[str, Any]) -> dict[str, Any]:
    # The rank lets a conditional update compare progress without reading the item first.
    return {**attempt, "status_rank": AttemptStatus(attempt["status"]).rank}


SUBMISSION_ATTRIBUTES = (
    "attempts",
    "attempt_count",
    "status",
    "gsi2pk",
    "updated_at",
    "gsi3sk",
    "capacity",
    "history",
    "version",
)
_ITEM_ONLY = {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "attempt_count"}


def item_to_job(item: dict[str, Any]) -> Job:
    data = {k: v for k, v in _from_item(item).items() if k not in _ITEM_ONLY}
    attempts = data.get("attempts") or {}
    data["attempts"] = [
        {k: v for k, v in attempts[n].items() if k != "status_rank"} for n in sorted(attempts, key=int)
    ]
    return Job.model_validate(data)


def status_list(name: str, statuses: frozenset[JobStatus], values: dict[str, Any]) -> str:
    """Placeholders for `#status IN (...)`, adding their values to `values`."""
    placeholders = []
    for index, status in enumerate(sorted(statuses)):
        values[f":{name}{index}"] = {"S": status.value}
        placeholders.append(f":{name}{index}")
    return ", ".join(placeholders)


def progress_update(
    job_id: str, tenant: str, progress: Progress
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The SET clauses of a progress event, with their attribute names and values."""
    at = to_iso(progress.at)
    names = {
        "#attempts": "attempts",
        "#n": str(progress.number),
        "#a_status": "status",
        "#rank": "status_rank",
        "#bid": "batch_job_id",
        "#status": "status",
        "#gsi2pk": "gsi2pk",
        "#gsi3sk": "gsi3sk",
        "#updated_at": "updated_at",
        "#attempt_count": "attempt_count",
        "#version": "version",
    }
    values: dict[str, Any] = {
        ":a_status": {"S": progress.status.value},
        ":rank": {"N": str(progress.status.rank)},
        ":bid": {"S": progress.batch_job_id},
        ":status": {"S": progress.job_status.value},
        ":status_pk": {"S": status_partition(tenant, progress.job_status)},
        ":activity": {"S": f"{at}#{job_id}"},
        ":now": {"S": at},
        ":n": {"N": str(progress.number)},
        ":one": {"N": "1"},
    }
    sets = [
        "#attempts.#n.#a_status = :a_status",
        "#attempts.#n.#rank = :rank",
        "#status = :status",
        "#gsi2pk = :status_pk",
        "#gsi3sk = :activity",
        "#updated_at = :now",
    ]
    if progress.started_at is not None:
        names["#started"] = "started_at"
        values[":started"] = {"S": to_iso(progress.started_at)}
        sets.append("#attempts.#n.#started = :started")
    if progress.log_stream:
        names["#log"] = "log_stream"
        values[":log"] = {"S": progress.log_stream}
        sets.append("#attempts.#n.#log = :log")
    if progress.status is AttemptStatus.RUNNABLE:
        names["#runnable"] = "runnable_at"
        sets.append("#attempts.#n.#runnable = if_not_exists(#attempts.#n.#runnable, :now)")
    return sets, names, values
