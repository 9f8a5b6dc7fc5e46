"""The local stack's DynamoDB (moto) is as atomic as DynamoDB when requests come at once: a transaction
that fails its condition never undoes what another request wrote meanwhile (local/moto_atomic.py,
applied by the `aws` fixture as by the local stack)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb import models as dynamodb_models

# Bounds on a hang, never a measure of speed: the loser waits this long for the go, and the test this
# long for the writer that came meanwhile before it lets the loser go on.
PATIENCE_SECONDS = 10
MEANWHILE_SECONDS = 1.0


def test_a_transaction_that_fails_its_condition_never_undoes_a_write_made_meanwhile(
    aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job item at version 1, and a transaction (a loser of a version race) that pauses right
    # after moto copied the table for its rollback
    table, dynamodb = aws.env["JOBS_TABLE_NAME"], aws.client("dynamodb")
    key = {"pk": {"S": "JOB#race"}, "sk": {"S": "JOB"}}
    dynamodb.put_item(TableName=table, Item={**key, "version": {"N": "1"}})
    copied, go = threading.Event(), threading.Event()
    copy_for_rollback = dynamodb_models.copy.deepcopy

    def pausing(value: Any, memo: Any = None) -> Any:
        made = copy_for_rollback(value, memo)
        if threading.current_thread().name == "loser" and not copied.is_set():
            copied.set()
            go.wait(PATIENCE_SECONDS)
        return made

    monkeypatch.setattr(dynamodb_models.copy, "deepcopy", pausing)
    refused: list[str] = []

    def loser() -> None:
        try:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {**key, "version": {"N": "1"}, "decision": {"S": "the loser's"}},
                            "ConditionExpression": "version = :stale",
                            "ExpressionAttributeValues": {":stale": {"N": "0"}},
                        }
                    }
                ]
            )
        except ClientError as error:
            refused.append(error.response["Error"]["Code"])

    def winner() -> None:
        dynamodb.put_item(
            TableName=table,
            Item={**key, "version": {"N": "2"}, "decision": {"S": "the winner's"}},
            ConditionExpression="version = :read",
            ExpressionAttributeValues={":read": {"N": "1"}},
        )

    # When the winner's conditional write comes while the loser's transaction is under way
    losing = threading.Thread(target=loser, name="loser")
    losing.start()
    assert copied.wait(PATIENCE_SECONDS)
    winning = threading.Thread(target=winner, name="winner")
    winning.start()
    winning.join(MEANWHILE_SECONDS)  # DynamoDB would make it wait for, or fail against, the transaction
    go.set()
    losing.join(PATIENCE_SECONDS)
    winning.join(PATIENCE_SECONDS)

    # Then the loser is refused and the winner's write stands
    assert refused == ["TransactionCanceledException"]
    item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert (item["version"], item["decision"]) == ({"N": "2"}, {"S": "the winner's"})
