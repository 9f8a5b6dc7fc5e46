"""The bulk routes: cancel or retry the caller's jobs that match a filter, a page a call, or count
them (dry_run)."""

from __future__ import annotations

import time
from dataclasses import replace

from aws_lambda_powertools.event_handler import Response

from batchplane.api.bulk_schemas import BulkBody, BulkResult
from batchplane.api.openapi import SUBMITTED_HEADERS, responses
from batchplane.api.params import IdempotencyKey, caller_in, new_router, tokens
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.lifecycle.bulk import BulkAction
from batchplane.service import bulk
from batchplane.wiring import ports

router = new_router()

# A bulk call changes at most this many jobs (a few AWS calls each); a dry run reads, and counts more.
BULK_PAGE_MAX = 100
DRY_RUN_PAGE_MAX = 1000
# API Gateway gives up on a call after 29 s: one stops taking jobs after this long, or when its
# function has this little time left, and answers with a token for the rest.
BULK_SECONDS = 20
BULK_MARGIN_MS = 5000
BULK_RESPONSES = responses(
    200,
    "What the call did (a dry run: what it would do) to each job it took, and a token for the rest",
    400,
    409,
    415,
    headers={"Idempotent-Replayed": SUBMITTED_HEADERS["Idempotent-Replayed"]},
)


def _bulk(action: BulkAction, body: BulkBody, idempotency_key: str | None) -> Response[BulkResult]:
    started = time.monotonic()
    caller = caller_in(router)
    most = DRY_RUN_PAGE_MAX if body.dry_run else BULK_PAGE_MAX
    if body.limit is not None and body.limit > most:
        kind = "in a dry run" if body.dry_run else "unless dry_run (1000 then)"
        raise InvalidRequest("limit too large", [ErrorDetail("limit", f"at most {most} {kind}")])
    request = bulk.BulkRequest(
        tenant=caller.tenant,
        requested_by=caller.principal,
        action=action,
        statuses=body.filter.status,
        job_type=body.filter.job_type,
        created_from=body.filter.created_from,
        created_to=body.filter.created_to,
        dry_run=body.dry_run,
        limit=body.limit or most,
        idempotency_key=idempotency_key,
    )
    # A token goes on with the operation it came from: this tenant, key and request.
    listing = ("bulk", caller.tenant, idempotency_key or "", request.fingerprint())
    opened = tokens.open(listing, body.next_token)
    context = router.lambda_context

    def time_is_short() -> bool:
        elapsed = time.monotonic() - started
        return elapsed > BULK_SECONDS or context.get_remaining_time_in_millis() < BULK_MARGIN_MS

    page = bulk.run(
        ports(),
        replace(request, cursor=bulk.Cursor.decode(opened) if opened else None),
        time_is_short=time_is_short,
    )
    result = BulkResult.of(page, tokens.sign(listing, page.next.encode() if page.next else None))
    headers = {"Idempotent-Replayed": "true"} if page.replayed else None
    return Response(status_code=200, content_type="application/json", body=result, headers=headers)


@router.post(
    "/bulk/cancel",
    summary="Cancel the caller's jobs that match a filter, a page a call (or count them: dry_run)",
    operation_id="bulk_cancel",
    responses=BULK_RESPONSES,
)
def bulk_cancel(body: BulkBody, idempotency_key: IdempotencyKey = None) -> Response[BulkResult]:
    return _bulk(BulkAction.CANCEL, body, idempotency_key)


@router.post(
    "/bulk/retry",
    summary="Retry the caller's FAILED or CANCELLED jobs that match a filter, a page a call",
    operation_id="bulk_retry",
    responses=BULK_RESPONSES,
)
def bulk_retry(body: BulkBody, idempotency_key: IdempotencyKey = None) -> Response[BulkResult]:
    return _bulk(BulkAction.RETRY, body, idempotency_key)
