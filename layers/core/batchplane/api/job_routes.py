"""The /jobs routes: submit, list, read, cancel and retry a job; a job's artifacts and its attempts'
logs, page by page. Each parses its request, calls one use case and shapes the reply."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from batchplane.api.openapi import LINKS_OF_A_JOB, SUBMITTED_HEADERS, responses
from batchplane.api.params import (
    ARTIFACT_PAGE_MAX,
    AllTenants,
    IdempotencyKey,
    NextToken,
    Tenant,
    caller_in,
    new_router,
    page_size,
    scope_read,
    tenant_read,
    tokens,
)
from batchplane.api.schemas import (
    ArtifactList,
    ArtifactView,
    AttemptLogView,
    JobList,
    JobView,
    LogLineView,
    SubmitJobBody,
)
from batchplane.models.job import Artifact, ArtifactRole, JobStatus
from batchplane.models.request import JobRequest
from batchplane.policy.cost import Pricing
from batchplane.service import costs, jobs, overview
from batchplane.service.job_logs import attempt_log
from batchplane.service.why_waiting import waiting
from batchplane.wiring import job_logs, ports

router = new_router()

# How many recorded artifacts GET /jobs/{job_id} shows; the rest are a page away.
JOB_VIEW_ARTIFACTS = 20
# Log lines: GetLogEvents' own most (10,000 events or 1 MB, whichever comes first), and a default page.
LOG_PAGE_MAX = 10_000
LOG_PAGE_DEFAULT = 1000

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _job(job_view: JobView, status: int = 200, headers: dict[str, str] | None = None) -> Response[JobView]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=job_view,
        headers=headers,
    )


@router.post(
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
    caller = caller_in(router)
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
        size_bytes=len((router.current_event.body or "").encode()),  # as sent: `resolve` decoded base64
    )
    submitted = jobs.submit(ports(), request, hold_over_limit=body.when_over_limit == "hold")
    headers = {"Location": f"/jobs/{submitted.job.job_id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _job(JobView.of(submitted.job, pricing=_pricing()), 202, headers)


@router.get(
    "/jobs/<job_id>",
    summary="A job with its attempts, history and artifacts, and why it waits while it waits in Batch",
    operation_id="get_job",
    responses=responses(200, "The job", 404, 409),
)
def get_job(job_id: JobId, tenant: Tenant = None) -> Response[JobView]:
    # An operator may name the job's tenant (as the console does from a listing of every tenant).
    tenant = tenant_read(router, tenant)
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


@router.get(
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
    tenant = caller_in(router).tenant
    listing = ("artifacts", tenant, job_id)
    start = tokens.open(listing, next_token)
    job = jobs.get_job(ports(), tenant, job_id)
    page = jobs.job_artifacts(
        ports(), tenant, job, limit=page_size(limit, ARTIFACT_PAGE_MAX), next_token=start
    )
    return ArtifactList(
        artifacts=[ArtifactView.model_validate(a.model_dump()) for a in page.artifacts],
        next_token=tokens.sign(listing, page.next_token),
    )


@router.get(
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
    # An operator may name the job's tenant, as on GET /jobs/{job_id} (the console's log pane does).
    tenant = tenant_read(router, tenant)
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


def _pricing() -> Pricing:
    return costs.pricing_of(ports())


@router.get(
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
    scope = scope_read(router, tenant, all_tenants)
    # A token is good for the listing it came from: this tenant (or all: "*", never a tenant's
    # name), these filters.
    listing = ("jobs", scope or "*", status.value if status else "", job_type or "")
    start = tokens.open(listing, next_token)
    page = overview.list_jobs(
        ports(), scope, limit=page_size(limit), status=status, job_type=job_type, next_token=start
    )
    # No cost in a listing: a listed job holds its current attempt only (GET /jobs/{job_id} has them all).
    return JobList(jobs=[JobView.of(j) for j in page.jobs], next_token=tokens.sign(listing, page.next_token))


@router.post(
    "/jobs/<job_id>/cancel",
    summary="Cancel a job; a running Batch job is terminated",
    operation_id="cancel_job",
    responses=responses(200, "The job, CANCELLED", 404, 409, links={"RetryJob": LINKS_OF_A_JOB["RetryJob"]}),
)
def cancel_job(job_id: JobId) -> Response[JobView]:
    caller = caller_in(router)
    return _job(
        JobView.of(jobs.cancel_job(ports(), caller.tenant, job_id, caller.principal), pricing=_pricing())
    )


@router.post(
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
    caller = caller_in(router)
    return _job(
        JobView.of(jobs.retry_job(ports(), caller.tenant, job_id, caller.principal), pricing=_pricing()), 202
    )
