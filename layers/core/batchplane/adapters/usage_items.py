"""A tenant's monthly usage item, `TENANT#<tenant>` / `USAGE#<yyyy-mm>`: what its jobs admitted that
month reserved against its budget and what they cost once finished, by job type and outcome.

Amounts are integers, micro-USD, so DynamoDB's ADD sums them exactly. `committed` (spent + reserved)
is kept as an attribute of its own because a condition cannot add: a reservation holds only while
`committed <= budget - reservation`, checked in the job's creating transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from batchplane.policy.cost import UsageCharge
from batchplane.service.ports import BudgetHold, UsageLine, UsageMonth

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

_COUNTERS = ("jobs", "usd", "extra")


def usage_key(tenant: str, month: str) -> dict[str, Any]:
    return {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": f"USAGE#{month}"}}


def usage_query(table: str, tenant: str, first: str, last: str) -> dict[str, Any]:
    """Query's arguments for the tenant's usage items from month `first` to `last` (both included)."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
        "ConsistentRead": True,  # a budget's refusal is judged on it
        "ExpressionAttributeValues": {
            ":pk": usage_key(tenant, first)["pk"],
            ":first": usage_key(tenant, first)["sk"],
            ":last": usage_key(tenant, last)["sk"],
        },
    }


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def reserve(table: str, tenant: str, hold: BudgetHold) -> TransactWriteItemTypeDef:
    """Reserve `hold.amount` of the month if it still fits; with `hold.alert`, mark the alert raised."""
    condition = "(attribute_not_exists(committed) OR committed <= :room)"
    update = "ADD committed :amount, reserved :amount"
    values: dict[str, Any] = {":amount": _n(hold.amount), ":room": _n(hold.room)}
    if hold.alert:
        condition += " AND attribute_not_exists(alerted)"
        update += " SET alerted = :true"
        values[":true"] = {"BOOL": True}
    return {
        "Update": {
            "TableName": table,
            "Key": usage_key(tenant, hold.month),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
    }


def charge(table: str, usage: UsageCharge) -> TransactWriteItemTypeDef:
    """A finish's cost added to its month, by job type and outcome, and its reservation given back."""
    line = f"{usage.job_type}:{usage.outcome}"
    return {
        "Update": {
            "TableName": table,
            "Key": usage_key(usage.tenant, usage.month),
            "UpdateExpression": (
                "ADD committed :committed, reserved :released, spent :cost, "
                "#jobs :finishes, #usd :cost, #extra :extra"
            ),
            "ExpressionAttributeNames": {f"#{name}": f"{name}:{line}" for name in _COUNTERS},
            "ExpressionAttributeValues": {
                ":committed": _n(usage.committed),
                ":released": _n(-usage.released),
                ":cost": _n(usage.cost),
                ":finishes": _n(usage.finishes),
                ":extra": _n(usage.extra),
            },
        }
    }


def item_to_usage(item: dict[str, Any]) -> UsageMonth:
    lines: dict[str, dict[str, int]] = {}
    for name, value in item.items():
        kind, _, line = name.partition(":")
        if kind in _COUNTERS and line:
            lines.setdefault(line, {})[kind] = int(value["N"])
    return UsageMonth(
        month=item["sk"]["S"].removeprefix("USAGE#"),
        spent=int(item.get("spent", {}).get("N", "0")),
        reserved=int(item.get("reserved", {}).get("N", "0")),
        alerted=item.get("alerted", {}).get("BOOL", False),
        lines=[
            UsageLine(
                job_type=line.rpartition(":")[0],
                outcome=line.rpartition(":")[2],
                jobs=counts.get("jobs", 0),
                cost=counts.get("usd", 0),
                extra=counts.get("extra", 0),
            )
            for line, counts in sorted(lines.items())
        ],
    )
