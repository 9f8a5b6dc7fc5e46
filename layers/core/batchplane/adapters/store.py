"""DynamoDB job store: one table (layout in job_items.py), conditional writes only.

Every state change is one conditional write: a version guard for read-modify-write paths, a state
guard for the paths that read nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.adapters.job_items import (
    ACTIVITY_SHARDS,
    IDEMPOTENCY_TTL,
    SUBMISSION_ATTRIBUTES,
    attempt_map,
    counter_key,
    idempotency_key,
    item_to_job,
    job_key,
    job_to_item,
    progress_update,
    status_list,
    status_partition,
    to_av,
)
from batchplane.errors import ConcurrentUpdate, ErrorDetail, InvalidRequest, QuotaExceeded
from batchplane.models.job import (
    DISPATCHABLE_STATUSES,
    IN_BATCH_STATUSES,
    Attempt,
    HistoryEntry,
    Job,
    JobStatus,
)
from batchplane.models.progress import Progress
from batchplane.models.time import to_iso
from batchplane.service.ports import KeyAlreadyUsed, ObjectVersion, Page, StaleObject

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, TransactWriteItemTypeDef


class _Reasons:
    """TransactionCanceledException reasons, by the position of the item that caused them."""

    def __init__(self, error: ClientError) -> None:
        self._reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]

    def failed(self, index: int) -> bool:
        return index < len(self._reasons) and self._reasons[index].get("Code") == "ConditionalCheckFailed"

    def item(self, index: int) -> dict[str, Any] | None:
        return self._reasons[index].get("Item") if index < len(self._reasons) else None


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _is_cancelled_transaction(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


class DynamoJobStore:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
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
        items: dict[str, TransactWriteItemTypeDef] = {"job": self._put_new(job)}
        if job.idempotency_key is not None:
            items["key"] = self._put_key(job, job.idempotency_key, fingerprint)
        items["quota"] = self._count_in(job.tenant, job.job_type, in_flight_limit)
        if latest_object is not None:
            items["object"] = self._move_latest(latest_object, job.job_id)
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

    def _put_new(self, job: Job) -> TransactWriteItemTypeDef:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": job_to_item(job),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _put_key(self, job: Job, key: str, fingerprint: str) -> TransactWriteItemTypeDef:
        """The Idempotency-Key's item; the old one comes back when the key was used before."""
        expires = int((job.created_at + IDEMPOTENCY_TTL).timestamp())
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": {
                    **idempotency_key(job.tenant, key),
                    "job_id": {"S": job.job_id},
                    "fingerprint": {"S": fingerprint},
                    "expires_at": {"N": str(expires)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _move_latest(self, obj: ObjectVersion, job_id: str) -> TransactWriteItemTypeDef:
        """The object key's newest-seen sequencer, moved only forward."""
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": f"OBJ#{obj.bucket}#{obj.key}"}, "sk": {"S": "LATEST"}},
                "UpdateExpression": "SET sequencer = :sequencer, job_id = :job_id",
                "ConditionExpression": "attribute_not_exists(sequencer) OR sequencer < :sequencer",
                "ExpressionAttributeValues": {":sequencer": {"S": obj.ordering}, ":job_id": {"S": job_id}},
            }
        }

    def _raise_key_used(self, tenant: str, key: str, old: dict[str, Any] | None) -> None:
        if old is None:  # not every DynamoDB (or emulator) returns the old item; read it
            old = self._client.get_item(
                TableName=self.table_name, Key=idempotency_key(tenant, key), ConsistentRead=True
            ).get("Item")
        if old is None:  # the key expired between the two calls: the caller may simply try again
            raise ConcurrentUpdate("idempotency key changed concurrently; try again")
        raise KeyAlreadyUsed(job_id=old["job_id"]["S"], fingerprint=old["fingerprint"]["S"])

    def _count_in(self, tenant: str, job_type: str, limit: int) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_key(tenant, job_type),
                "UpdateExpression": "ADD in_flight :one",
                "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight < :limit",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)}},
            }
        }

    def _count_out(self, tenant: str, job_type: str) -> TransactWriteItemTypeDef:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_key(tenant, job_type),
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
            index, pk_name, pk_value = "by_tenant_status", "gsi2pk", status_partition(tenant, status)
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
        put: PutTypeDef = {
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
            ":attempt": to_av(attempt_map(attempt.model_dump(mode="json", exclude_none=True))),
            ":number": {"N": str(attempt.number)},
            ":previous": {"N": str(attempt.number - 1)},
            ":submitted": {"S": JobStatus.SUBMITTED.value},
            ":status_pk": {"S": status_partition(tenant, JobStatus.SUBMITTED)},
            ":now": {"S": now},
            ":activity": {"S": f"{now}#{job_id}"},
            ":history": {"L": [to_av(entry.model_dump(mode="json"))]},
            ":one": {"N": "1"},
            ":capacity": {"S": attempt.capacity.value},
        }
        dispatchable = status_list("dispatchable", DISPATCHABLE_STATUSES, values)
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
                **{f"#{name}": name for name in SUBMISSION_ATTRIBUTES},
            },
            ExpressionAttributeValues=values,
        )

    def record_progress(self, job_id: str, tenant: str, progress: Progress) -> bool:
        """Move an attempt forward on a non-terminal event: one conditional write, no read.

        False when the event is stale or duplicate (the attempt is already as far), belongs to an
        attempt that is not the job's current one, to a twin Batch job, or the job has finished.
        """
        sets, names, values = progress_update(job_id, tenant, progress)
        active = status_list("active", IN_BATCH_STATUSES, values)
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
