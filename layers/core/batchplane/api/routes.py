"""REST routes: each parses its request, calls one use case and shapes the reply."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane import __version__
from batchplane.api import errors
from batchplane.api.body import BodyRefused, loads, readable
from batchplane.api.bulk_schemas import BulkBody, BulkResult
from batchplane.api.identity import Caller, caller_of
from batchplane.api.openapi import LINKS_OF_A_JOB, SUBMITTED_HEADERS, pruned, responses, with_job_types
from batchplane.api.page_tokens import TOKEN_PATTERN, PageTokens
from batchplane.api.schemas import (
    ArtifactList,
    ArtifactUses,
    ArtifactUseView,
    ArtifactView,
    AttemptLogView,
    JobList,
    JobView,
    LogLineView,
    SubmitJobBody,
    SummaryView,
    Usage,
)
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.lifecycle.bulk import BulkAction
from batchplane.models.inputs import TENANT_NAME
from batchplane.models.job import Artifact, ArtifactRole, JobStatus
from batchplane.models.request import JobRequest
from batchplane.policy.cost import Pricing, month_of
from batchplane.service import bulk, costs, jobs, overview
from batchplane.service.job_logs import attempt_log
from batchplane.service.why_waiting import waiting
from batchplane.wiring import job_logs, page_token_key, ports

# The resolver parses bodies with the same bounds as the check in `resolve` (api/body.py).
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
errors.register(app)


def _token_key() -> bytes:
    # Looked up per token, not at import: the settings that name the secret are read at first use.
    return page_token_key()()


tokens = PageTokens(key=_token_key)

# The routes that read a body (the others ignore one): only these check its media type and JSON.
BODY_ROUTES = {("POST", "/jobs"), ("POST", "/bulk/cancel"), ("POST", "/bulk/retry")}

# How many recorded artifacts GET /jobs/{job_id} shows; the rest are a page away.
JOB_VIEW_ARTIFACTS = 20
# Artifact items are small (~300 bytes): a page of 1,000 is one DynamoDB Query of under 1 MB.
ARTIFACT_PAGE_MAX = 1000
# Log lines: GetLogEvents' own most (10,000 events or 1 MB, whichever comes first), and a default page.
LOG_PAGE_MAX = 10_000
LOG_PAGE_DEFAULT = 1000

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
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


def _caller() -> Caller:
    return caller_of(app.current_event.request_context.raw_event)


def _job(job_view: JobView, status: int = 200, headers: dict[str, str] | None = None) -> Response[JobView]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=job_view,
        headers=headers,
    )


@app.post(
    "/jobs",
    summary="Submit a job",
    operation_id="submit_job",
    responses=responses(
        202,
        "Accepted: the job, QUEUED, or HELD when over the limit with `when_over_limit: hold` (or, with a"
        " replayed Idempotency-Key, the job it made)",
        400,
        404,
        409,
        415,
        links=LINKS_OF_A_JOB,
        headers=SUBMITTED_HEADERS,
    ),
)
def post_job(body: SubmitJobBody, idempotency_key: IdempotencyKey = None) -> Response[JobView]:
    caller = _caller()
    request = JobRequest(
        tenant=caller.tenant,
        job_type=body.job_type,
        parameters=body.parameters,
        vcpus=body.vcpus,
        memory_mib=body.memory_mib,
        inputs=[
            Artifact(uri=i.uri, role=ArtifactRole.INPUT, version_id=i.version_id, etag=i.etag)
            for i in body.inputs
        ],
        idempotency_key=idempotency_key,
        priority=body.priority,
        array=body.array,
        source="api",
        size_bytes=len((app.current_event.body or "").encode()),  # as sent: `resolve` decoded base64
    )
    submitted = jobs.submit(ports(), request, hold_over_limit=body.when_over_limit == "hold")
    headers = {"Location": f"/jobs/{submitted.job.job_id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _job(JobView.of(submitted.job, pricing=_pricing()), 202, headers)


@app.get(
    "/jobs/<job_id>",
    summary="A job with its attempts, history and artifacts, and why it waits while it waits in Batch",
    operation_id="get_job",
    responses=responses(200, "The job", 404, 409),
)
def get_job(job_id: JobId, tenant: Tenant = None) -> Response[JobView]:
    caller = _caller()
    # An operator may name the job's tenant (as the console does from a listing of every tenant).
    tenant = overview.tenant_of(ports(), caller.tenant, caller.principal, tenant)
    job = jobs.get_job(ports(), tenant, job_id)
    first = jobs.job_artifacts(ports(), tenant, job, limit=JOB_VIEW_ARTIFACTS)
    return _job(
        JobView.of(
            job,
            first.artifacts,
            more=first.next_token is not None,
            waiting=waiting(ports(), job),
            pricing=_pricing(),
        )
    )


@app.get(
    "/jobs/<job_id>/artifacts",
    summary="Every artifact a job's attempts wrote, page by page",
    operation_id="get_job_artifacts",
    responses=responses(200, "A page of the job's artifacts", 404, 409),
)
def get_job_artifacts(
    job_id: JobId,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_token: NextToken = None,
) -> ArtifactList:
    tenant = _caller().tenant
    listing = ("artifacts", tenant, job_id)
    start = tokens.open(listing, next_token)
    job = jobs.get_job(ports(), tenant, job_id)
    page = jobs.job_artifacts(
        ports(), tenant, job, limit=_page_size(limit, ARTIFACT_PAGE_MAX), next_token=start
    )
    return ArtifactList(
        artifacts=[ArtifactView.model_validate(a.model_dump()) for a in page.artifacts],
        next_token=tokens.sign(listing, page.next_token),
    )


@app.get(
    "/jobs/<job_id>/attempts/<attempt>/log",
    summary="An attempt's log (its container's output), page by page",
    operation_id="get_attempt_log",
    responses=responses(200, "A page of the attempt's log, oldest line first", 404, 409),
)
def get_attempt_log(
    job_id: JobId,
    attempt: Annotated[int, Path(ge=1, le=10_000)],
    limit: Annotated[int | None, Query(ge=1, le=LOG_PAGE_MAX)] = None,
    next_token: NextToken = None,
    tenant: Tenant = None,
) -> AttemptLogView:
    caller = _caller()
    # An operator may name the job's tenant, as on GET /jobs/{job_id} (the console's log pane does).
    tenant = overview.tenant_of(ports(), caller.tenant, caller.principal, tenant)
    listing = ("log", tenant, job_id, str(attempt))
    start = tokens.open(listing, next_token)
    page = attempt_log(
        ports(), job_logs(), tenant, job_id, attempt, limit=limit or LOG_PAGE_DEFAULT, next_token=start
    )
    return AttemptLogView(
        job_id=page.job_id,
        attempt=page.attempt,
        where=page.where,
        lines=[LogLineView(at=line.at, message=line.message) for line in page.lines],
        next_token=tokens.sign(listing, page.next_token),
    )


@app.get(
    "/artifacts",
    summary="Which of the caller's jobs read or wrote an object (lineage)",
    operation_id="get_artifact_uses",
    responses=responses(200, "A page of the object's uses by the caller's jobs"),
)
def get_artifact_uses(
    uri: Annotated[
        str, Query(min_length=6, max_length=2048, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$")
    ],
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_token: NextToken = None,
) -> ArtifactUses:
    tenant = _caller().tenant
    listing = ("uses", tenant, uri)
    start = tokens.open(listing, next_token)
    page = jobs.artifact_lineage(
        ports(), tenant, uri, limit=_page_size(limit, ARTIFACT_PAGE_MAX), next_token=start
    )
    return ArtifactUses(
        uses=[
            ArtifactUseView.model_validate(
                {**use.artifact.model_dump(), "job_id": use.job_id, "attempt": use.attempt}
            )
            for use in page.uses
        ],
        next_token=tokens.sign(listing, page.next_token),
    )


def _pricing() -> Pricing:
    return costs.pricing_of(ports())


def _page_size(limit: int | None, most: int | None = None) -> int:
    api = ports().policy.api
    most = most or api.max_page_size
    if limit is not None and limit > most:
        raise InvalidRequest("limit too large", [ErrorDetail("limit", f"at most {most}")])
    return limit or api.default_page_size


@app.get(
    "/jobs",
    summary="The caller's jobs, newest first (an operator's: one tenant's, or every tenant's unfinished)",
    operation_id="list_jobs",
    responses=responses(200, "A page of the caller's jobs"),
)
def list_jobs(  # noqa: PLR0917 - the route's query parameters, passed by name
    status: Annotated[JobStatus | None, Query()] = None,
    job_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_token: NextToken = None,
    tenant: Tenant = None,
    all_tenants: AllTenants = False,
) -> JobList:
    caller = _caller()
    scope = overview.scope_of(
        ports(), caller.tenant, caller.principal, tenant=tenant, all_tenants=all_tenants
    )
    # A token is good for the listing it came from: this tenant (or all: "*", never a tenant's
    # name), these filters.
    listing = ("jobs", scope or "*", status.value if status else "", job_type or "")
    start = tokens.open(listing, next_token)
    page = overview.list_jobs(
        ports(), scope, limit=_page_size(limit), status=status, job_type=job_type, next_token=start
    )
    # No cost in a listing: a listed job holds its current attempt only (GET /jobs/{job_id} has them all).
    return JobList(jobs=[JobView.of(j) for j in page.jobs], next_token=tokens.sign(listing, page.next_token))


@app.get(
    "/summary",
    summary="Counts by state, retries by failure class and Spot fallbacks of the jobs made in a window",
    operation_id="get_summary",
    responses=responses(200, "The summary of the jobs created in [from, to)"),
)
def get_summary(
    since: Annotated[
        datetime | None, Query(alias="from", description="ISO 8601; default a day before `to`")
    ] = None,
    until: Annotated[datetime | None, Query(alias="to", description="ISO 8601; default now")] = None,
    tenant: Tenant = None,
    all_tenants: AllTenants = False,
) -> SummaryView:
    caller = _caller()
    scope = overview.scope_of(
        ports(), caller.tenant, caller.principal, tenant=tenant, all_tenants=all_tenants
    )
    window = overview.window_of(ports(), _aware(since, "from"), _aware(until, "to"))
    found = overview.summary(ports(), scope, window)
    summary = found.summary
    return SummaryView(
        tenant=scope,
        all_tenants=scope is None,
        since=window.since,
        until=window.until,
        jobs=summary.jobs,
        complete=found.complete,
        by_status=summary.by_status,
        retries_by_failure_class=summary.retries_by_failure_class,
        spot_fallbacks=summary.spot_fallbacks,
        jobs_fallen_back=summary.jobs_fallen_back[:20],
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidRequest("a time without its zone", [ErrorDetail(field, "give a UTC offset, e.g. Z")])
    return value


@app.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job; a running Batch job is terminated",
    operation_id="cancel_job",
    responses=responses(200, "The job, CANCELLED", 404, 409, links={"RetryJob": LINKS_OF_A_JOB["RetryJob"]}),
)
def cancel_job(job_id: JobId) -> Response[JobView]:
    caller = _caller()
    return _job(
        JobView.of(jobs.cancel_job(ports(), caller.tenant, job_id, caller.principal), pricing=_pricing())
    )


@app.post(
    "/jobs/<job_id>/retry",
    summary="Start a new attempt of a FAILED or CANCELLED job",
    operation_id="retry_job",
    responses=responses(
        202,
        "Accepted: the job, QUEUED for its next attempt",
        404,
        409,
        links={name: LINKS_OF_A_JOB[name] for name in ("GetJob", "CancelJob")},
    ),
)
def retry_job(job_id: JobId) -> Response[JobView]:
    caller = _caller()
    return _job(
        JobView.of(jobs.retry_job(ports(), caller.tenant, job_id, caller.principal), pricing=_pricing()), 202
    )


@app.get(
    "/usage",
    summary="The caller's estimated spend by month, job type and outcome",
    operation_id="get_usage",
    responses=responses(200, "The caller's usage from `from` to `to` (months; default: this month)"),
)
def get_usage(
    first: Annotated[
        str | None, Query(alias="from", pattern=costs.MONTH_PATTERN, description="first month, YYYY-MM")
    ] = None,
    last: Annotated[
        str | None, Query(alias="to", pattern=costs.MONTH_PATTERN, description="last month, YYYY-MM (UTC)")
    ] = None,
) -> Usage:
    tenant = _caller().tenant
    last = last or month_of(ports().clock())
    first = first or last
    budget = ports().policy.budgets.of(tenant)
    months = costs.usage(ports(), tenant, first, last)
    return Usage.of(first, last, months, budget.monthly_usd if budget else None, _pricing())


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
    caller = _caller()
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
    context = app.lambda_context

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


@app.post(
    "/bulk/cancel",
    summary="Cancel the caller's jobs that match a filter, a page a call (or count them: dry_run)",
    operation_id="bulk_cancel",
    responses=BULK_RESPONSES,
)
def bulk_cancel(body: BulkBody, idempotency_key: IdempotencyKey = None) -> Response[BulkResult]:
    return _bulk(BulkAction.CANCEL, body, idempotency_key)


@app.post(
    "/bulk/retry",
    summary="Retry the caller's FAILED or CANCELLED jobs that match a filter, a page a call",
    operation_id="bulk_retry",
    responses=BULK_RESPONSES,
)
def bulk_retry(body: BulkBody, idempotency_key: IdempotencyKey = None) -> Response[BulkResult]:
    return _bulk(BulkAction.RETRY, body, idempotency_key)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[dict[str, Any]]:
    tenant = _caller().tenant
    document = app.get_openapi_schema(title="batchplane", version=__version__).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return Response(
        status_code=200,
        content_type="application/json",
        body=pruned(
            with_job_types(
                document,
                ports().policy,
                jobs.input_areas(ports(), tenant),
                ports().policy.scheduling.placement(tenant).priority,
            )
        ),
    )


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Check the body before anything parses it (api/body.py), then route."""
    # The router takes /jobs/ for /jobs: so does this check.
    reads_body = (event.get("httpMethod"), (event.get("path") or "").rstrip("/")) in BODY_ROUTES
    try:
        checked = readable(event, limit=ports().policy.api.max_body_bytes, reads_body=reads_body)
    except BodyRefused as refused:
        return errors.proxy_error(refused.status, refused.code, refused.message, refused.details)
    return app.resolve(checked, context)
