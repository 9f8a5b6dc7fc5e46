"""What the route modules share: their parameters' types, the caller and whose jobs it reads, the page
size and page tokens."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from batchplane.api.identity import Caller, caller_of
from batchplane.api.page_tokens import TOKEN_PATTERN, PageTokens
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.models.inputs import TENANT_NAME
from batchplane.service import overview
from batchplane.wiring import page_token_key, ports


def _token_key() -> bytes:
    # Looked up per token, not at import: the settings that name the secret are read at first use.
    return page_token_key()()


tokens = PageTokens(key=_token_key)

# Artifact items are small (~300 bytes): a page of 1,000 is one DynamoDB Query of under 1 MB.
ARTIFACT_PAGE_MAX = 1000

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
]
NextToken = Annotated[
    str | None,
    Query(max_length=6144, pattern=TOKEN_PATTERN, description="the `next_token` of the previous page"),
]


# An operator's choice of whose jobs to read (service/overview.py::scope_of); others get 403.
Tenant = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=TENANT_NAME.pattern,
        description="another tenant's jobs: only for the policy's api.operators",
    ),
]
AllTenants = Annotated[
    bool,
    Query(description="every tenant's unfinished jobs: only for the policy's api.operators"),
]


def new_router() -> APIGatewayRouter:
    """A route module's router (routes.py includes it in the resolver)."""
    return APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools' Router.__init__ is unannotated


def caller_in(router: APIGatewayRouter | APIGatewayRestResolver) -> Caller:
    """Who calls: from the request's identity (api/identity.py::caller_of), as the resolver holds it
    (a router, once included, reads the resolver's)."""
    return caller_of(router.current_event.request_context.raw_event)


def tenant_read(router: APIGatewayRouter, tenant: str | None) -> str:
    """The one tenant whose jobs a request reads: the caller's own, or the one an operator names
    (service/overview.py::tenant_of; 403 for anyone else)."""
    caller = caller_in(router)
    return overview.tenant_of(ports(), caller.tenant, caller.principal, tenant)


def scope_read(router: APIGatewayRouter, tenant: str | None, all_tenants: bool) -> str | None:
    """Whose jobs a request reads, None for every tenant's (service/overview.py::scope_of)."""
    caller = caller_in(router)
    return overview.scope_of(ports(), caller.tenant, caller.principal, tenant=tenant, all_tenants=all_tenants)


def page_size(limit: int | None, most: int | None = None) -> int:
    api = ports().policy.api
    most = most or api.max_page_size
    if limit is not None and limit > most:
        raise InvalidRequest("limit too large", [ErrorDetail("limit", f"at most {most}")])
    return limit or api.default_page_size
