"""DynamoDB job store: one table, conditional writes only.

Item layout (single table, keys `pk`/`sk`):

    JOB#<job_id>           / JOB                 the job; attempts as a map keyed by number
    IDEM#<tenant>#<key>    / IDEM                an Idempotency-Key and the job it made (TTL)
    TENANT#<tenant>        / INFLIGHT#<job_type> the tenant's in-flight counter for a job type

Indexes: `by_tenant` (gsi1: tenant, created_at#job_id) lists a tenant's jobs newest first;
`by_tenant_status` (gsi2: tenant#status, created_at#job_id) serves the status filter; `by_activity`
(gsi3: ACTIVE#<shard>, last_event_at#job_id) is sparse, holding only unfinished jobs, for the sweeper.
Every state change is one conditional write: a version guard for read-modify-write paths, a state
guard for the paths that read nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, cast

from botocore.exceptions import ClientError

from batchplane.errors import ConcurrentUpdate, ErrorDetail, InvalidRequest, QuotaExceeded
from batchplane.models.job import (
    DISPATCHABLE_STATUSES,
    IN_BATCH_STATUSES,
    Attempt,
    AttemptStatus,
    HistoryEntry,
    Job,
    JobStatus,
)
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


def _to_av(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], _codec()[0].serialize(value))


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def _counter_key(tenant: str, job_type: str) -> dict[str, Any]:
    return {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": f"INFLIGHT#{job_type}"}}


def _idempotency_key(tenant: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEM#{tenant}#{key}"}, "sk": {"S": "IDEM"}}


def activity_shard(job_id: str) -> str:
    return f"ACTIVE#{zlib.crc32(job_id.encode()) % ACTIVITY_SHARDS}"


def _created_sort_key(job: Job) -> str:
    return f"{to_iso(job.created_at)}#{job.job_id}"


def _status_partition(tenant: str, status: JobStatus) -> str:
    return f"TENANT#{tenant}#{status.value}"


def job_to_item(job: Job) -> dict[str, Any]:
    data = job.model_dump(mode="json", exclude_none=True)
    data["attempts"] = {str(a["number"]): _attempt_map(a) for a in data["attempts"]}
    data.update(
        pk=f"JOB#{job.job_id}",
        sk="JOB",
        gsi1pk=f"TENANT#{job.tenant}",
        gsi1sk=_created_sort_key(job),
        gsi2pk=_status_partition(job.tenant, job.status),
        gsi2sk=_created_sort_key(job),
        attempt_count=len(job.attempts),
    )
    if not job.status.is_terminal:
        data["gsi3pk"] = activity_shard(job.job_id)
        data["gsi3sk"] = f"{to_iso(job.updated_at)}#{job.job_id}"
    return {k: _to_av(v) for k, v in data.items()}


def _attempt_map(attempt: dict[str, Any]) -> dict[str, Any]:
    # The rank lets a conditional update compare progress without reading the item first.
    return {**attempt, "status_rank": AttemptStatus(attempt["status"]).rank}


_SUBMISSION_ATTRIBUTES = (
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


class _Reasons:
    """TransactionCanceledException reasons, by the position of the item that caused them."""

    def __init__(self, error: ClientError) -> None:
        self._reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]

    def failed(self, index: int) -> bool:
        return index < len(self._reasons) and self._reasons[index].get("Code") == "ConditionalCheckFailed"

    def item(self, index: int) -> dict[str, Any] | None:
        return self._reasons[index].get("Item") if index < len(self._reasons) else None


@dataclass(frozen=True)
class ObjectVersion:
    """An object key and where its event stands in S3's order (the padded sequencer)."""

    bucket: str
    key: str
    ordering: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class StaleObject(Exception):
    """An event older than one already ingested for the same key: its content is out of date."""


@dataclass(frozen=True)
class KeyAlreadyUsed(Exception):
    """The Idempotency-Key already made a job; the caller compares fingerprints."""

    job_id: str
    fingerprint: str


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_token: str | None


def _status_list(name: str, statuses: frozenset[JobStatus], values: dict[str, Any]) -> str:
    """Placeholders for `#status IN (...)`, adding their values to `values`."""
    placeholders = []
    for index, status in enumerate(sorted(statuses)):
        values[f":{name}{index}"] = {"S": status.value}
        placeholders.append(f":{name}{index}")
    return ", ".join(placeholders)


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _is_cancelled_transaction(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


class DynamoJobStore:
    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self._client = client

    # -- creation -----------------------------------------------------------------------------------

    def create(
        self,
        job: Job,
        *,
        fingerprint: str,
        in_flight_limit: int,
        latest_object: ObjectVersion | None = None,
    ) -> None:
        """Write a new job, its idempotency key and its quota count in one transaction.

        With `latest_object`, the transaction also moves the object key's newest-seen sequencer, so an
        older event that arrives after a newer one makes no job. Raises KeyAlreadyUsed when the key
        made a job before, StaleObject for an out-of-date event, QuotaExceeded when the tenant is full.
        """
        items: dict[str, dict[str, Any]] = {
            "job": {
                "Put": {
                    "TableName": self.table_name,
                    "Item": job_to_item(job),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        }
        if job.idempotency_key is not None:
            expires = int((job.created_at + IDEMPOTENCY_TTL).timestamp())
            items["key"] = {
                "Put": {
                    "TableName": self.table_name,
                    "Item": {
                        **_idempotency_key(job.tenant, job.idempotency_key),
                        "job_id": {"S": job.job_id},
                        "fingerprint": {"S": fingerprint},
                        "expires_at": {"N": str(expires)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        items["quota"] = self._count_in(job.tenant, job.job_type, in_flight_limit)
        if latest_object is not None:
            items["object"] = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {
                        "pk": {"S": f"OBJ#{latest_object.bucket}#{latest_object.key}"},
                        "sk": {"S": "LATEST"},
                    },
                    "UpdateExpression": "SET sequencer = :sequencer, job_id = :job_id",
                    "ConditionExpression": "attribute_not_exists(sequencer) OR sequencer < :sequencer",
                    "ExpressionAttributeValues": {
                        ":sequencer": {"S": latest_object.ordering},
                        ":job_id": {"S": job.job_id},
                    },
                }
            }
        position = {name: index for index, name in enumerate(items)}
        try:
            self._client.transact_write_items(TransactItems=list(items.values()))
        except ClientError as error:
            if not _is_cancelled_transaction(error):
                raise
            reasons = _Reasons(error)
            if job.idempotency_key is not None and reasons.failed(position["key"]):
                self._raise_key_used(job.tenant, job.idempotency_key, reasons.item(position["key"]))
            if "object" in position and reasons.failed(position["object"]):
                raise StaleObject(f"a newer version of {latest_object} was ingested already") from error
            if reasons.failed(position["quota"]):
                raise self._quota_error(job.tenant, job.job_type, in_flight_limit) from error
            raise

    def _raise_key_used(self, tenant: str, key: str, old: dict[str, Any] | None) -> None:
        if old is None:  # not every DynamoDB (or emulator) returns the old item; read it
            old = self._client.get_item(
                TableName=self.table_name, Key=_idempotency_key(tenant, key), ConsistentRead=True
            ).get("Item")
        if old is None:  # the key expired between the two calls: the caller may simply try again
            raise ConcurrentUpdate("idempotency key changed concurrently; try again")
        raise KeyAlreadyUsed(job_id=old["job_id"]["S"], fingerprint=old["fingerprint"]["S"])

    def _count_in(self, tenant: str, job_type: str, limit: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": _counter_key(tenant, job_type),
                "UpdateExpression": "ADD in_flight :one",
                "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight < :limit",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
            }
        }

    def _count_out(self, tenant: str, job_type: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": _counter_key(tenant, job_type),
                "UpdateExpression": "ADD in_flight :minus_one",
                "ExpressionAttributeValues": {":minus_one": {"N": "-1"}},
            }
        }

    @staticmethod
    def _quota_error(tenant: str, job_type: str, limit: int) -> QuotaExceeded:
        return QuotaExceeded(
            f"tenant {tenant} has {limit} {job_type} jobs in flight",
            [ErrorDetail("job_type", f"at most {limit} {job_type} jobs in flight per tenant")],
        )

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, job_id: str, *, consistent: bool = True) -> Job | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=job_key(job_id), ConsistentRead=consistent
        ).get("Item")
        return item_to_job(item) if item else None

    def in_flight(self, tenant: str, job_type: str) -> int:
        item = self._client.get_item(
            TableName=self.table_name, Key=_counter_key(tenant, job_type), ConsistentRead=True
        ).get("Item")
        return int(item["in_flight"]["N"]) if item and "in_flight" in item else 0

    def list_for_tenant(
        self,
        tenant: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        job_type: str | None = None,
        next_token: str | None = None,
    ) -> Page:
        """A tenant's jobs, newest first. The token is bound to the tenant and the status filter."""
        if status is None:
            index, pk_name, pk_value = "by_tenant", "gsi1pk", f"TENANT#{tenant}"
        else:
            index, pk_name, pk_value = "by_tenant_status", "gsi2pk", _status_partition(tenant, status)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": pk_name},
            "ExpressionAttributeValues": {":pk": {"S": pk_value}},
            "ScanIndexForward": False,
        }
        if job_type is not None:
            query["FilterExpression"] = "job_type = :job_type"
            query["ExpressionAttributeValues"][":job_type"] = {"S": job_type}
        start = self._decode_token(next_token, pk_name, pk_value) if next_token else None
        jobs: list[Job] = []
        # A filter applies after Limit, so keep reading until the page is full or the index is done.
        while len(jobs) < limit:
            if start:
                query["ExclusiveStartKey"] = start
            response = self._client.query(**query, Limit=limit - len(jobs))
            jobs.extend(item_to_job(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        return Page(jobs=jobs, next_token=self._encode_token(start) if start else None)

    @staticmethod
    def _encode_token(key: dict[str, Any]) -> str:
        plain = {k: v["S"] for k, v in key.items()}
        return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()

    @staticmethod
    def _decode_token(token: str, pk_name: str, pk_value: str) -> dict[str, Any]:
        invalid = InvalidRequest(
            "invalid next_token", [ErrorDetail("next_token", "not a token from this listing")]
        )
        try:
            plain = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, binascii.Error) as exc:
            raise invalid from exc
        # A token from another tenant's (or another filter's) listing must not open that listing.
        if not isinstance(plain, dict) or plain.get(pk_name) != pk_value:
            raise invalid
        if not all(isinstance(v, str) for v in plain.values()):
            raise invalid
        return {k: {"S": v} for k, v in plain.items()}

    # -- writes on the paths that read first ----------------------------------------------------------

    def save(self, job: Job, *, previous: Job, in_flight_limit: int | None = None) -> Job:
        """Replace the job if nobody changed it since `previous` was read; keep the quota count true.

        Leaving an unfinished state gives the tenant's in-flight slot back; re-entering one (a manual
        retry) takes a slot, within `in_flight_limit`.
        """
        saved = job.model_copy(update={"version": previous.version + 1})
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": job_to_item(saved),
            "ConditionExpression": "version = :version",
            "ExpressionAttributeValues": {":version": {"N": str(previous.version)}},
        }
        was_active, is_active = not previous.status.is_terminal, not job.status.is_terminal
        try:
            if was_active == is_active:
                self._client.put_item(**put)
                return saved
            counter = (
                self._count_in(job.tenant, job.job_type, in_flight_limit or 2**31)
                if is_active
                else self._count_out(job.tenant, job.job_type)
            )
            self._client.transact_write_items(TransactItems=[{"Put": put}, counter])
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConcurrentUpdate(f"job {job.job_id} changed concurrently") from error
            if _is_cancelled_transaction(error):
                reasons = _Reasons(error)
                if reasons.failed(0):
                    raise ConcurrentUpdate(f"job {job.job_id} changed concurrently") from error
                if reasons.failed(1):
                    raise self._quota_error(job.tenant, job.job_type, in_flight_limit or 0) from error
            raise
        return saved

    # -- writes on the paths that read nothing ----------------------------------------------------------

    def _update_if(self, **request: Any) -> bool:
        """UpdateItem under its condition: False, not an error, when the condition does not hold."""
        try:
            self._client.update_item(TableName=self.table_name, **request)
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def record_submission(self, job_id: str, tenant: str, attempt: Attempt, entry: HistoryEntry) -> bool:
        """Record a submitted attempt if the job still waits for exactly this attempt.

        False when it does not (cancelled meanwhile, or another dispatcher recorded it first).
        """
        now = to_iso(attempt.submitted_at)
        values = {
            ":attempt": _to_av(_attempt_map(attempt.model_dump(mode="json", exclude_none=True))),
            ":number": {"N": str(attempt.number)},
            ":previous": {"N": str(attempt.number - 1)},
            ":submitted": {"S": JobStatus.SUBMITTED.value},
            ":status_pk": {"S": _status_partition(tenant, JobStatus.SUBMITTED)},
            ":now": {"S": now},
            ":activity": {"S": f"{now}#{job_id}"},
            ":history": {"L": [_to_av(entry.model_dump(mode="json"))]},
            ":one": {"N": "1"},
            ":capacity": {"S": attempt.capacity.value},
        }
        dispatchable = _status_list("dispatchable", DISPATCHABLE_STATUSES, values)
        return self._update_if(
            Key=job_key(job_id),
            # Every attribute goes by a placeholder: several (status, capacity) are reserved words.
            UpdateExpression=(
                "SET #attempts.#n = :attempt, #attempt_count = :number, #status = :submitted, "
                "#gsi2pk = :status_pk, #updated_at = :now, #gsi3sk = :activity, #capacity = :capacity, "
                "#history = list_append(#history, :history) ADD #version :one"
            ),
            ConditionExpression=f"#status IN ({dispatchable}) AND #attempt_count = :previous",
            ExpressionAttributeNames={
                "#n": str(attempt.number),
                **{f"#{name}": name for name in _SUBMISSION_ATTRIBUTES},
            },
            ExpressionAttributeValues=values,
        )

    def record_progress(self, job_id: str, tenant: str, progress: Progress) -> bool:
        """Move an attempt forward on a non-terminal event: one conditional write, no read.

        False when the event is stale or duplicate (the attempt is already as far), belongs to an
        attempt that is not the job's current one, to a twin Batch job, or the job has finished.
        """
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
            ":status_pk": {"S": _status_partition(tenant, progress.job_status)},
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
        active = _status_list("active", IN_BATCH_STATUSES, values)
        return self._update_if(
            Key=job_key(job_id),
            UpdateExpression=f"SET {', '.join(sets)} ADD #version :one",
            ConditionExpression=(
                # Attempt n is current, in Batch's hands, and not yet this far. (A cancelled job that
                # was retried by hand is QUEUED with attempt n still unfinished: IN, not <> CANCELLED.)
                f"#attempt_count = :n AND #status IN ({active}) AND #attempts.#n.#rank < :rank "
                # The dispatcher records the Batch job id with the attempt; a twin's events do not match.
                "AND #attempts.#n.#bid = :bid"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def stale_jobs(self, older_than: datetime, limit: int = 500) -> list[Job]:
        """Unfinished jobs quiet since before `older_than`, oldest first within each shard."""
        found: list[Job] = []
        bound = f"{to_iso(older_than)}#"
        for shard in range(ACTIVITY_SHARDS):
            query: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": "by_activity",
                "KeyConditionExpression": "gsi3pk = :shard AND gsi3sk < :bound",
                "ExpressionAttributeValues": {":shard": {"S": f"ACTIVE#{shard}"}, ":bound": {"S": bound}},
            }
            while len(found) < limit:
                response = self._client.query(**query, Limit=limit - len(found))
                found.extend(item_to_job(item) for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def touch(self, job_id: str, until: datetime) -> None:
        """Move an unfinished job's place in the sweeper's index, so it is looked at again after `until`."""
        self._update_if(
            Key=job_key(job_id),
            UpdateExpression="SET gsi3sk = :activity",
            ConditionExpression="attribute_exists(gsi3pk)",
            ExpressionAttributeValues={":activity": {"S": f"{to_iso(until)}#{job_id}"}},
        )
