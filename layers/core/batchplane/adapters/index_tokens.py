"""Where a listing of the job index goes on: the tokens and positions it hands out, each bound to
the partitions it came from, so a token of one tenant's (or one filter's) listing opens no other.
"""

from __future__ import annotations

from typing import Any

from batchplane.adapters.dynamo_calls import decode_token, encode_token, invalid_token
from batchplane.errors import ErrorDetail, InvalidRequest

# An unfinished job's phase in by_tenant_status (TENANT#<t>#ACTIVE), and its partition's prefix in
# by_activity (ACTIVE#<shard>; the operator's listing of them all is bound to it).
ACTIVE = "ACTIVE"


def tenant_binding(tenant: str) -> str:
    """What a tenant's partitions start with, and what its whole listing's token is bound to."""
    return f"TENANT#{tenant}"


def active_before(token: str) -> str:
    """Where the listing of every tenant's unfinished jobs goes on: the sort key in its token."""
    return str(decode_token(token, "gsi3pk", ACTIVE)["gsi3sk"]["S"])


def active_token(before: str) -> str:
    """The token of the listing of every tenant's unfinished jobs, going on before `before`."""
    return encode_token({"gsi3pk": {"S": ACTIVE}, "gsi3sk": {"S": before}})


def tenant_before(token: str, tenant: str) -> str:
    """Where a tenant's whole listing goes on: the sort key in its token. A token of the by_tenant
    index (stacks before it was dropped: its last key) goes on from the same place."""
    try:
        key, sk_name = decode_token(token, "gsi2pk", tenant_binding(tenant)), "gsi2sk"
    except InvalidRequest:
        key, sk_name = decode_token(token, "gsi1pk", tenant_binding(tenant)), "gsi1sk"
    if sk_name not in key:
        raise invalid_token()
    return str(key[sk_name]["S"])


def tenant_token(tenant: str, before: str) -> str:
    """The token of a tenant's whole listing: bound to the tenant, going on before `before`."""
    return encode_token({"gsi2pk": {"S": tenant_binding(tenant)}, "gsi2sk": {"S": before}})


def position_token(part: int, key: dict[str, Any]) -> str:
    """Where a selection goes on: its partition's number and the last index entry taken."""
    return f"{part}:{encode_token(key)}"


def open_position(position: str | None, partitions: list[str]) -> tuple[int, dict[str, Any] | None]:
    """The partition number and last key a position_token names (0 and None: from the start)."""
    if position is None:
        return 0, None
    number, _, token = position.partition(":")
    if not number.isdigit() or int(number) >= len(partitions):
        raise InvalidRequest(
            "invalid next_token", [ErrorDetail("next_token", "not a token of this operation")]
        )
    # A position of another tenant's (or another filter's) partitions opens none of them.
    return int(number), decode_token(token, "gsi2pk", partitions[int(number)])
