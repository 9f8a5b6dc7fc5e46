"""The /artifacts route: which of the caller's jobs read or wrote an object (lineage). A job's own
artifacts are under /jobs (api/job_routes.py::get_job_artifacts)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from batchplane.api.openapi import responses
from batchplane.api.params import ARTIFACT_PAGE_MAX, NextToken, caller_in, new_router, page_size, tokens
from batchplane.api.schemas import ArtifactUses, ArtifactUseView
from batchplane.service import jobs
from batchplane.wiring import ports

router = new_router()


@router.get(
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
    tenant = caller_in(router).tenant
    listing = ("uses", tenant, uri)
    start = tokens.open(listing, next_token)
    page = jobs.artifact_lineage(
        ports(), tenant, uri, limit=page_size(limit, ARTIFACT_PAGE_MAX), next_token=start
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
