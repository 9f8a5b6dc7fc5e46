"""Bulk operations in the job table: which jobs a page takes (through the index) and each page as
recorded under the operation's Idempotency-Key.

    pk                        sk            what
    BULK#<tenant>#<key>       PAGE#<n:06>   fingerprint, as_of, job_ids (the plan), next_position,
                                            outcomes (one letter a job, once done), expires_at (TTL)

A page item is ~40 bytes a job: a page of 100 jobs is written twice at ~4 KB (its plan, then with
its outcomes), 9 write units in all.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.adapters.dynamo_calls import is_conditional_failure
from batchplane.adapters.job_index import IndexReader
from batchplane.adapters.job_items import IDEMPOTENCY_TTL
from batchplane.models.time import to_iso
from batchplane.service.ports import OperationPage, Page

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb import DynamoDBClient

    from batchplane.lifecycle.bulk import Selection

# One letter an outcome (lifecycle/bulk.py::Outcome), so a page's outcomes are 100 bytes, not 2 KB.
_LETTERS = {
    "cancelled": "c",
    "retried": "r",
    "matched": "m",
    "changed": "x",
    "over_limit": "o",
    "refused": "f",
}
_OUTCOMES = {letter: outcome for outcome, letter in _LETTERS.items()}


class DynamoOperations:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table
        self._index = IndexReader(client, table)

    def select(self, tenant: str, selection: Selection, *, limit: int, position: str | None) -> Page:
        return self._index.selected(tenant, selection, limit=limit, position=position)

    @staticmethod
    def _key(tenant: str, key: str, number: int) -> dict[str, Any]:
        return {"pk": {"S": f"BULK#{tenant}#{key}"}, "sk": {"S": f"PAGE#{number:06d}"}}

    def page(self, tenant: str, key: str, number: int) -> OperationPage | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(tenant, key, number), ConsistentRead=True
        ).get("Item")
        return _page_of(item) if item is not None else None

    def plan(self, tenant: str, key: str, page: OperationPage) -> OperationPage:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._item(tenant, key, page),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            recorded = self.page(tenant, key, page.number)  # the same call, made at the same time
            if recorded is not None:
                return recorded
            raise
        return page

    def finish(self, tenant: str, key: str, page: OperationPage) -> None:
        self._client.put_item(TableName=self._table, Item=self._item(tenant, key, page))

    def _item(self, tenant: str, key: str, page: OperationPage) -> dict[str, Any]:
        item: dict[str, Any] = {
            **self._key(tenant, key, page.number),
            "fingerprint": {"S": page.fingerprint},
            "as_of": {"S": to_iso(page.as_of)},
            "job_ids": {"L": [{"S": job_id} for job_id in page.job_ids]},
            "expires_at": {"N": str(int((page.as_of + IDEMPOTENCY_TTL).timestamp()))},
        }
        if page.next_position is not None:
            item["next_position"] = {"S": page.next_position}
        if page.outcomes is not None:
            item["outcomes"] = {"S": "".join(_LETTERS[outcome] for outcome in page.outcomes)}
        return item


def _page_of(item: dict[str, Any]) -> OperationPage:
    outcomes = item.get("outcomes", {}).get("S")
    return OperationPage(
        number=int(item["sk"]["S"].removeprefix("PAGE#")),
        fingerprint=item["fingerprint"]["S"],
        as_of=datetime.fromisoformat(item["as_of"]["S"]),
        job_ids=[value["S"] for value in item["job_ids"]["L"]],
        next_position=item.get("next_position", {}).get("S"),
        outcomes=[_OUTCOMES[letter] for letter in outcomes] if outcomes is not None else None,
    )
