"""The array jobs' items in the jobs table (service/coalesce.py writes them):

    ARRAY#<name>   ARRAY          meta: the array's route, size, manifest; `parent_job_id` once known
    ARRAY#<name>   PART#<k:05d>   `members` of indexes k*100 .. k*100+99: "<job_id>#<attempt>", "" a hole

Parts never change once written, so a part read is kept for the process's life (bounded); so is a
parent id once recorded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.adapters.dynamo_calls import is_conditional_failure
from batchplane.service.ports import ArrayMember

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_dynamodb import DynamoDBClient

PART_SIZE = 100  # members a part holds: 100 "<uuid>#<n>" strings, ~4 KB (one read unit)
_KEPT_PARTS = 1000  # parts kept in memory, ~4 MB at most


def array_key(array_name: str) -> dict[str, Any]:
    return {"pk": {"S": f"ARRAY#{array_name}"}, "sk": {"S": "ARRAY"}}


def part_key(array_name: str, part: int) -> dict[str, Any]:
    return {"pk": {"S": f"ARRAY#{array_name}"}, "sk": {"S": f"PART#{part:05d}"}}


class DynamoArrayBook:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client
        self._parts: OrderedDict[tuple[str, int], list[str]] = OrderedDict()
        self._parents: dict[str, str] = {}

    def member(self, array_name: str, index: int) -> ArrayMember | None:
        if index < 0:
            return None
        members = self._part(array_name, index // PART_SIZE)
        offset = index % PART_SIZE
        entry = members[offset] if members is not None and offset < len(members) else ""
        job_id, _, attempt = entry.rpartition("#")
        if not job_id or not attempt.isdigit():
            return None  # a hole, or no such index
        return ArrayMember(array_name=array_name, index=index, job_id=job_id, attempt=int(attempt))

    def _part(self, array_name: str, part: int) -> list[str] | None:
        key = (array_name, part)
        if key in self._parts:
            self._parts.move_to_end(key)
            return self._parts[key]
        # Consistent: written before SubmitJob, moments before the first child's event.
        item = self._client.get_item(
            TableName=self.table_name, Key=part_key(array_name, part), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None  # not kept: an absent part is no part of any answer to come
        members = [value["S"] for value in item.get("members", {}).get("L", [])]
        self._parts[key] = members
        if len(self._parts) > _KEPT_PARTS:
            self._parts.popitem(last=False)
        return members

    def parent_of(self, array_name: str) -> str | None:
        if array_name in self._parents:
            return self._parents[array_name]
        item = self._client.get_item(
            TableName=self.table_name,
            Key=array_key(array_name),
            ConsistentRead=True,
            ProjectionExpression="parent_job_id",
        ).get("Item", {})
        parent = item.get("parent_job_id", {}).get("S")
        if parent is not None:
            self._parents[array_name] = parent
        return parent

    def record_parent(self, array_name: str, parent_job_id: str) -> bool:
        """One conditional write on the meta item (~1 write unit): a parent once recorded stays, and
        an array batchplane has no meta for gets no item."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=array_key(array_name),
                UpdateExpression="SET parent_job_id = :parent",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(parent_job_id)",
                ExpressionAttributeValues={":parent": {"S": parent_job_id}},
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        self._parents[array_name] = parent_job_id
        return True
