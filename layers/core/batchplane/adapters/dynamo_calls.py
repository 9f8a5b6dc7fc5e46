"""The DynamoDB call patterns the job store is built from: conditional-failure reasons, batched puts
that resend what DynamoDB leaves unprocessed, and paging with tokens bound to their listing."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.errors import ConcurrentUpdate, ErrorDetail, InvalidRequest

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_WRITE_MAX = 25  # BatchWriteItem's limit
BATCH_GET_MAX = 100  # BatchGetItem's limit
UNPROCESSED_TRIES = 8


class CancellationReasons:
    """TransactionCanceledException reasons, by the position of the item that caused them."""

    def __init__(self, error: ClientError) -> None:
        self._reasons: list[dict[str, Any]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]

    def failed(self, index: int) -> bool:
        return index < len(self._reasons) and self._reasons[index].get("Code") == "ConditionalCheckFailed"

    def item(self, index: int) -> dict[str, Any] | None:
        return self._reasons[index].get("Item") if index < len(self._reasons) else None


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def is_cancelled_transaction(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "TransactionCanceledException"


def _until_processed(send: Callable[[Any], Any], pending: Any, what: str) -> None:
    """Call `send(pending)`, which returns what DynamoDB left unprocessed, until nothing is left,
    backing off; ConcurrentUpdate (try again later) when DynamoDB still leaves some."""
    for attempt in range(UNPROCESSED_TRIES):
        pending = send(pending)
        if not pending:
            return
        time.sleep(min(1.0, 0.05 * 2**attempt))
    raise ConcurrentUpdate(f"DynamoDB left {what} unprocessed; try again")


def put_all(client: DynamoDBClient, table: str, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 puts a call; what DynamoDB leaves unprocessed is sent again, backing off."""

    def send(pending: list[Any]) -> list[Any]:
        response = client.batch_write_item(RequestItems={table: pending})
        return list(response.get("UnprocessedItems", {}).get(table, []))

    for start in range(0, len(items), BATCH_WRITE_MAX):
        chunk = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_MAX]]
        _until_processed(send, chunk, "writes")


def get_all(client: DynamoDBClient, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BatchGetItem, 100 keys a call, eventually consistent, in no particular order; what DynamoDB
    leaves unprocessed is asked for again, backing off. An item that does not exist is not among them."""
    found: list[dict[str, Any]] = []

    def send(pending: Any) -> Any:
        response = client.batch_get_item(RequestItems=pending)
        found.extend(response.get("Responses", {}).get(table, []))
        return response.get("UnprocessedKeys") or {}

    for start in range(0, len(keys), BATCH_GET_MAX):
        _until_processed(send, {table: {"Keys": keys[start : start + BATCH_GET_MAX]}}, "reads")
    return found


def query_all(client: DynamoDBClient, **query: Any) -> list[dict[str, Any]]:
    """Every item a Query finds, page after page."""
    found: list[dict[str, Any]] = []
    while True:
        response = client.query(**query)
        found.extend(response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return found
        query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def query_page(
    client: DynamoDBClient, table: str, partition: str, prefix: str, *, limit: int, next_token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a partition's items whose sort key starts with `prefix`, and the next page's token."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": partition}, ":prefix": {"S": prefix}},
        "Limit": limit,
    }
    if next_token:
        query["ExclusiveStartKey"] = decode_token(next_token, "pk", partition)
    response = client.query(**query)
    last = response.get("LastEvaluatedKey")
    return response.get("Items", []), encode_token(last) if last else None


def encode_token(key: dict[str, Any]) -> str:
    plain = {k: v["S"] for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()


def invalid_token() -> InvalidRequest:
    return InvalidRequest("invalid next_token", [ErrorDetail("next_token", "not a token from this listing")])


def decode_token(token: str, pk_name: str, pk_value: str) -> dict[str, Any]:
    invalid = invalid_token()
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
