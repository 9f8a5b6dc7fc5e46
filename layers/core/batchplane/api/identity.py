"""Who is calling: the tenant comes from the authorizer or the IAM principal, never from the body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchplane.models.inputs import TENANT_NAME as _TENANT  # one key segment: incoming/<tenant>/


class Unauthenticated(Exception):
    """The request carries no identity batchplane can map to a tenant."""


@dataclass(frozen=True)
class Caller:
    tenant: str
    principal: str


def _tenant_from_arn(arn: str) -> str | None:
    # arn:aws:sts::123456789012:assumed-role/<role>/<session>  -> the role is the tenant
    # arn:aws:iam::123456789012:user/<path/><name>             -> the user is the tenant
    resource = arn.split(":", 5)[-1] if arn.count(":") >= 5 else ""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        return rest.split("/", 1)[0] or None
    if kind == "user":
        return rest.rsplit("/", 1)[-1] or None
    return None


def caller_of(request_context: dict[str, Any]) -> Caller:
    """Tenant from (in order) a Lambda authorizer's `tenant`, a Cognito `custom:tenant` claim,
    or the IAM principal of a SigV4-signed request."""
    authorizer = request_context.get("authorizer") or {}
    identity = request_context.get("identity") or {}
    claims = authorizer.get("claims") or {}
    principal = str(
        authorizer.get("principalId")
        or claims.get("sub")
        or identity.get("userArn")
        or identity.get("caller")
        or ""
    )
    tenant = authorizer.get("tenant") or claims.get("custom:tenant")
    if not tenant and identity.get("userArn"):
        tenant = _tenant_from_arn(str(identity["userArn"]))
    if not tenant or not _TENANT.fullmatch(str(tenant)):
        raise Unauthenticated("no tenant in the caller's identity")
    return Caller(tenant=str(tenant), principal=principal or str(tenant))
