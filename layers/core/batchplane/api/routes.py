"""REST routes: each parses its request, calls one use case and shapes the reply."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane import __version__
from batchplane.api import errors
from batchplane.api.identity import Caller, caller_of
from batchplane.api.schemas import JobList, JobView, SubmitJobBody
from batchplane.errors import ErrorDetail, InvalidRequest
from batchplane.models.job import Artifact, ArtifactRole, JobStatus
from batchplane.models.request import JobRequest
from batchplane.service import jobs
from batchplane.wiring import ports

app = APIGatewayRestResolver(enable_validation=True)
errors.register(app)

JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def _caller() -> Caller:
    return caller_of(app.current_event.request_context.raw_event)


def _job(job_view: JobView, status: int = 200, headers: dict[str, str] | None = None) -> Response[JobView]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=job_view,
        headers=headers,
    )


@app.post("/jobs", summary="Submit a job", responses={202: {"description": "Accepted: the job, QUEUED"}})
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
        inputs=[Artifact(uri=i.uri, role=ArtifactRole.INPUT) for i in body.inputs],
        idempotency_key=idempotency_key,
        source="api",
        size_bytes=len((app.current_event.body or "").encode()),
    )
    submitted = jobs.submit(ports(), request)
    headers = {"Location": f"/jobs/{submitted.job.job_id}"}
    if submitted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _job(JobView.of(submitted.job), 202, headers)


@app.get("/jobs/<job_id>", summary="A job with its attempts, history and artifacts")
def get_job(job_id: JobId) -> Response[JobView]:
    return _job(JobView.of(jobs.get_job(ports(), _caller().tenant, job_id)))


@app.get("/jobs", summary="The caller's jobs, newest first")
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    job_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> JobList:
    api = ports().policy.api
    if limit is not None and limit > api.max_page_size:
        raise InvalidRequest("limit too large", [ErrorDetail("limit", f"at most {api.max_page_size}")])
    page = jobs.list_jobs(
        ports(),
        _caller().tenant,
        limit=limit or api.default_page_size,
        status=status,
        job_type=job_type,
        next_token=next_token,
    )
    return JobList(jobs=[JobView.of(j) for j in page.jobs], next_token=page.next_token)


@app.post("/jobs/<job_id>/cancel", summary="Cancel a job; a running Batch job is terminated")
def cancel_job(job_id: JobId) -> Response[JobView]:
    caller = _caller()
    return _job(JobView.of(jobs.cancel_job(ports(), caller.tenant, job_id, caller.principal)))


@app.post("/jobs/<job_id>/retry", summary="Start a new attempt of a FAILED or CANCELLED job")
def retry_job(job_id: JobId) -> Response[JobView]:
    caller = _caller()
    return _job(JobView.of(jobs.retry_job(ports(), caller.tenant, job_id, caller.principal)), 202)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    schema = app.get_openapi_json_schema(title="batchplane", version=__version__)
    return Response(status_code=200, content_type="application/json", body=schema)


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Refuse an oversized body before anything parses it, then route."""
    limit = ports().policy.api.max_body_bytes
    size = len((event.get("body") or "").encode())
    if size > limit:
        return errors.proxy_error(
            413,
            "request_too_large",
            "request body too large",
            [ErrorDetail("body", f"{size} bytes is over {limit}")],
        )
    return app.resolve(event, context)
