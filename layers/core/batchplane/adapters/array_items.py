"""Array jobs' items in the job table, and the claim of a member's attempt:

    pk                 sk               what
    ARRAY#<name>       ARRAY            the meta: what the children share, the manifest, the size, and
                                        `parent_job_id` once SubmitJob answered (or the array was adopted)
    ARRAY#<name>       PART#<k:05d>     `members`: "<job_id>#<attempt>" of indexes k*100 .. k*100+99, in
                                        order; immutable, written before the meta and the claims

Both expire (TTL) with the longest a child can run plus the retention of its job's records.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.adapters.attempt_writes import submission_request
from batchplane.adapters.dynamo_calls import is_conditional_failure, put_all
from batchplane.adapters.job_items import expiry, to_av
from batchplane.models.job import Attempt, HistoryEntry
from batchplane.models.time import to_iso
from batchplane.observability import logger
from batchplane.policy.arrays import PART_SIZE, parse_member_key, part_of, parts_of
from batchplane.service.ports import ArrayMember, ArrayMeta, Claim

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_dynamodb import DynamoDBClient

_META = "ARRAY"
_PART = "PART#"
# A child runs at most 14 days (a job type's longest timeout) after its array was made.
_LONGEST_RUN = timedelta(days=14)
_KEPT_PARTS = 1000  # parts a process keeps, each up to 100 "<uuid>#<n>" strings
_KEPT_PARENTS = 10_000  # parents a process keeps (~1 MB)


def _pk(name: str) -> str:
    return f"ARRAY#{name}"


def _key(name: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": _pk(name)}, "sk": {"S": sort_key}}


# An array batchplane made (its meta), not yet submitted for good: no parent recorded, not refused.
_MADE_AND_UNRECORDED = (
    "attribute_exists(pk) AND attribute_not_exists(parent_job_id) AND attribute_not_exists(refused)"
)


class DynamoArrayBook:
    def __init__(self, table_name: str, client: DynamoDBClient, *, retention: timedelta) -> None:
        self.table_name = table_name
        self._client = client
        self._retention = retention
        # Parts never change once written: a process keeps those it has read (state change, sweeper).
        self._parts: dict[tuple[str, int], list[str]] = {}
        self._parents: dict[str, str] = {}
        self._lock = threading.Lock()

    def write(self, meta: ArrayMeta, keys: list[str]) -> None:
        expires_at = expiry(meta.created_at, self._retention + _LONGEST_RUN)
        parts = [
            {**_key(meta.name, f"{_PART}{k:05d}"), "members": to_av(members), "expires_at": to_av(expires_at)}
            for k, members in enumerate(parts_of(keys))
        ]
        put_all(self._client, self.table_name, parts)
        item = {
            **_key(meta.name, _META),
            "tenant": {"S": meta.tenant},
            "job_type": {"S": meta.job_type},
            "queue": {"S": meta.queue},
            "job_definition": {"S": meta.job_definition},
            "capacity": {"S": meta.capacity},
            "vcpus": {"N": str(meta.vcpus)},
            "memory_mib": {"N": str(meta.memory_mib)},
            "size": {"N": str(meta.size)},
            "manifest_uri": {"S": meta.manifest_uri},
            "created_at": {"S": to_iso(meta.created_at)},
            "share": {"S": meta.share},
            "priority": {"N": str(meta.priority)},
            "parameters": to_av(meta.parameters),
            "expires_at": {"N": str(expires_at)},
        }
        try:
            # Never over an earlier delivery's meta: it may hold the parent's id already.
            self._client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise

    def meta(self, array_name: str) -> ArrayMeta | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=_key(array_name, _META), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return ArrayMeta(
            name=array_name,
            tenant=item["tenant"]["S"],
            job_type=item["job_type"]["S"],
            queue=item["queue"]["S"],
            job_definition=item["job_definition"]["S"],
            capacity=item["capacity"]["S"],
            vcpus=int(item["vcpus"]["N"]),
            memory_mib=int(item["memory_mib"]["N"]),
            size=int(item["size"]["N"]),
            manifest_uri=item["manifest_uri"]["S"],
            created_at=datetime.fromisoformat(item["created_at"]["S"]),
            share=item["share"]["S"],
            priority=int(item["priority"]["N"]),
            parameters={k: v["S"] for k, v in item["parameters"]["M"].items()},
            parent_job_id=item.get("parent_job_id", {}).get("S"),
            refused=item.get("refused", {}).get("S"),
        )

    def parent_of(self, array_name: str) -> str | None:
        with self._lock:
            known = self._parents.get(array_name)
        if known is not None:
            return known
        item = self._client.get_item(
            TableName=self.table_name,
            Key=_key(array_name, _META),
            ConsistentRead=True,
            ProjectionExpression="parent_job_id",
        ).get("Item", {})
        parent = item.get("parent_job_id", {}).get("S")
        if parent is not None:  # recorded once, never changed: kept
            self._keep_parent(array_name, parent)
        return parent

    def _keep_parent(self, array_name: str, parent: str) -> None:
        with self._lock:
            self._parents[array_name] = parent
            if len(self._parents) > _KEPT_PARENTS:  # the oldest first
                del self._parents[next(iter(self._parents))]

    def member(self, array_name: str, index: int) -> ArrayMember | None:
        number, position = part_of(index)
        members = self._part(array_name, number)
        if members is None or position >= len(members) or not members[position]:
            return None  # no such index, or a hole
        job_id, attempt = parse_member_key(members[position])
        return ArrayMember(array_name=array_name, index=index, job_id=job_id, attempt=attempt)

    def members(self, array_name: str, size: int) -> list[ArrayMember]:
        found: list[ArrayMember] = []
        for number in range((size + PART_SIZE - 1) // PART_SIZE):
            for position, key in enumerate(self._part(array_name, number) or []):
                if not key:
                    continue
                job_id, attempt = parse_member_key(key)
                found.append(ArrayMember(array_name, number * PART_SIZE + position, job_id, attempt))
        return found

    def _part(self, array_name: str, number: int) -> list[str] | None:
        with self._lock:
            cached = self._parts.get((array_name, number))
        if cached is not None:
            return cached
        item = self._client.get_item(
            TableName=self.table_name, Key=_key(array_name, f"{_PART}{number:05d}"), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        members = [value["S"] for value in item["members"]["L"]]
        with self._lock:
            self._parts[(array_name, number)] = members
            if len(self._parts) > _KEPT_PARTS:  # the oldest read goes first: ~4 MB at most
                del self._parts[next(iter(self._parts))]
        return members

    def claim(self, job_id: str, attempt: Attempt, entry: HistoryEntry) -> Claim:
        request = submission_request(job_id, attempt, entry)
        try:
            self._client.update_item(
                TableName=self.table_name, ReturnValuesOnConditionCheckFailure="ALL_OLD", **request
            )
            return Claim(ours=True)
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
        held = old.get("attempts", {}).get("M", {}).get(str(attempt.number), {}).get("M", {})
        holder = held.get("array_name", {}).get("S")
        if holder == attempt.array_name:
            return Claim(ours=True, before=True)  # an earlier delivery claimed it
        return Claim(ours=False, other=holder)

    def hold_submission(self, array_name: str, now: datetime, until: datetime) -> bool:
        """One conditional write on the meta item (~1 write unit); a hold is an epoch second."""
        return self._update_meta(
            array_name,
            "SET submitting_until = :until",
            "AND (attribute_not_exists(submitting_until) OR submitting_until <= :now)",
            {":until": {"N": str(int(until.timestamp()))}, ":now": {"N": str(int(now.timestamp()))}},
        )

    def record_parent(self, array_name: str, parent_job_id: str) -> bool:
        """One conditional write on the meta item (~1 write unit): a parent once recorded stays, and
        an array batchplane has no meta for gets no item. True when this call recorded it."""
        recorded = self._update_meta(
            array_name, "SET parent_job_id = :parent", "", {":parent": {"S": parent_job_id}}
        )
        if recorded:
            self._keep_parent(array_name, parent_job_id)
        else:
            logger.debug("array parent recorded already", extra={"array": array_name})
        return recorded

    def close(self, array_name: str, reason: str) -> bool:
        """One conditional write on the meta item (~1 write unit); False when closed already or its
        parent is recorded."""
        return self._update_meta(array_name, "SET refused = :reason", "", {":reason": {"S": reason[:1024]}})

    def _update_meta(self, array_name: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        """The update on the meta of an array batchplane made and whose parent is not recorded yet (and
        `condition`, ANDed on); False when the condition failed."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=_key(array_name, _META),
                UpdateExpression=update,
                ConditionExpression=f"{_MADE_AND_UNRECORDED} {condition}",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            return False
        return True
