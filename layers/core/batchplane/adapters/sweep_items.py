"""What the sweeper keeps between its runs, in the jobs table beside the jobs (their layout:
job_items.py); no job is read or written here.

    pk               sk       what
    SWEEP            CURSOR   where an unfinished sweep goes on (models/sweep.py::SweepCursor); deleted
                              when the sweep completes
    QUEUE#<queue>    FRONT    the job queue's first RUNNABLE jobs as the sweeper last took them
                              (models/waiting.py::QueueFront), for GET /jobs/{job_id}'s `waiting`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchplane.models.sweep import SweepCursor
from batchplane.models.waiting import QueueFront

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb import DynamoDBClient

_SWEEP_KEY = {"pk": {"S": "SWEEP"}, "sk": {"S": "CURSOR"}}


def _front_key(queue: str) -> dict[str, Any]:
    return {"pk": {"S": f"QUEUE#{queue}"}, "sk": {"S": "FRONT"}}


class DynamoSweepBook:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client

    def sweep_cursor(self) -> SweepCursor | None:
        """Where an unfinished sweep goes on (strongly consistent: the last invocation just wrote it)."""
        read = self._client.get_item(TableName=self.table_name, Key=_SWEEP_KEY, ConsistentRead=True)
        item = read.get("Item")
        return SweepCursor.model_validate_json(item["data"]["S"]) if item else None

    def keep_sweep_cursor(self, cursor: SweepCursor | None) -> None:
        """Keep where the sweep goes on; None: the sweep is complete, forget it."""
        if cursor is None:
            self._client.delete_item(TableName=self.table_name, Key=_SWEEP_KEY)
            return
        item = {**_SWEEP_KEY, "data": {"S": cursor.model_dump_json()}}
        self._client.put_item(TableName=self.table_name, Item=item)

    def queue_front(self, queue: str) -> QueueFront | None:
        """The latest snapshot of a job queue's first RUNNABLE jobs the sweeper kept (~4 KB, 0.5 RRU)."""
        item = self._client.get_item(TableName=self.table_name, Key=_front_key(queue)).get("Item")
        return QueueFront.model_validate_json(item["data"]["S"]) if item else None

    def keep_queue_front(self, front: QueueFront) -> None:
        item = {**_front_key(front.queue), "data": {"S": front.model_dump_json()}}
        self._client.put_item(TableName=self.table_name, Item=item)
