"""REST routes: each parses its request, calls one use case and shapes the reply."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane import __version__
from batchplane.api import errors
from batchplane.api.body import BodyRefused, loads, readable
from batchplane.api.identity import Caller, caller_of
from batchplane.api.openapi import LINKS_OF_A_JOB, SUBMITTED_HEADERS, pruned, responses, with_job_types
from batchplane.api.page_tokens import TOKEN_PATTERN, PageTokens
from batchplane.api.schemas import (
    ArtifactList,
    ArtifactUses,
    ArtifactUseView,
    ArtifactView,
    JobList,
    JobView,
    SubmitJobBody,
    Usage,
)
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.models.job import Artifact, ArtifactRole, JobStatus
from batchplane.models.request import JobRequest
from batchplane.policy.cost import Pricing, month_of
from batchplane.service import costs, jobs
from batchplane.wiring import page_token_key, ports

# The resolver parses bodies with the same bounds as the check in `resolve` (api/body.py).
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
errors.register(app)


def _token_key() -> bytes:
    # Looked up per token, not at import: the settings that name the secret are read at first use.
    return page_token_key()()


tokens = PageTokens(key=_token_key)

# The routes that read a body (the others ignore one): only these check its media type and JSON.
BODY_ROUTES = {("POST", "/jobs")}

# How many recorded artifacts GET /jobs/{job_id} shows; the rest are a page away.
JOB_VIEW_ARTIFACTS = 20
# Artifact items are small (~300 bytes): a page of 1,000 is one DynamoDB Query of under 1 MB.
ARTIFACT_PAGE_MAX = 1000

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
NextToken = Annotated[
    str | None,
    Query(max_length=6144, pattern=TOKEN_PATTERN, description="the `next_token` of the previous page"),
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
        "Accepted: the job, QUEUED (or, with a replayed Idempotency-Key, the job it made)",
        400,
        404,
        409,
        415,
        links=LINKS_OF_A_JOB,
        headers=SUBMITTED_HEADERS,
    ),
)
def post_job(
    body: SubmitJobBody,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> Response[JobView]:
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
        source="api",
        size_bytes=len((app.current_event.body or "").encode()),  # as sent: `resolve` decoded base64
    )
    submitted = jobs.submit(ports(), request)
    headers = {"Location": f"/jobs/{submitted.job.job_id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _job(JobView.of(submitted.job, pricing=_pricing()), 202, headers)


@app.get(
    "/jobs/<job_id>",
    summary="A job with its attempts, history and artifacts",
    operation_id="get_job",
    responses=responses(200, "The job", 404, 409),
)
def get_job(job_id: JobId) -> Response[JobView]:
    tenant = _caller().tenant
    job = jobs.get_job(ports(), tenant, job_id)
    first = jobs.job_artifacts(ports(), tenant, job, limit=JOB_VIEW_ARTIFACTS)
    return _job(JobView.of(job, first.artifacts, more=first.next_token is not None, pricing=_pricing()))


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
    summary="The caller's jobs, newest first",
    operation_id="list_jobs",
    responses=responses(200, "A page of the caller's jobs"),
)
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    job_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_token: NextToken = None,
) -> JobList:
    tenant = _caller().tenant
    # A token is good for the listing it came from: this tenant, these filters.
    listing = ("jobs", tenant, status.value if status else "", job_type or "")
    start = tokens.open(listing, next_token)
    page = jobs.list_jobs(
        ports(), tenant, limit=_page_size(limit), status=status, job_type=job_type, next_token=start
    )
    # No cost in a listing: a listed job holds its current attempt only (GET /jobs/{job_id} has them all).
    return JobList(jobs=[JobView.of(j) for j in page.jobs], next_token=tokens.sign(listing, page.next_token))


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


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[dict[str, Any]]:
    document = app.get_openapi_schema(title="batchplane", version=__version__).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return Response(
        status_code=200,
        content_type="application/json",
        body=pruned(with_job_types(document, ports().policy, jobs.input_areas(ports(), _caller().tenant))),
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
