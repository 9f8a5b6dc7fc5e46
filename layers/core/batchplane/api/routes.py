"""The REST API's resolver: the error mapping, the route modules it includes, the OpenAPI document
and `resolve`, which checks the body before anything parses it. The routes themselves are in
job_routes.py (/jobs), artifact_routes.py (/artifacts), report_routes.py (/summary, /usage) and
bulk_routes.py (/bulk); each parses its request, calls one use case and shapes the reply."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane import __version__
from batchplane.api import artifact_routes, bulk_routes, errors, job_routes, report_routes
from batchplane.api.body import BodyRefused, loads, readable
from batchplane.api.openapi import pruned, with_job_types
from batchplane.api.params import caller_in
from batchplane.service import jobs
from batchplane.wiring import ports

# The resolver parses bodies with the same bounds as the check in `resolve` (api/body.py).
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=loads)
errors.register(app)

# The OpenAPI document lists paths in the order their routes are added (those with a path parameter
# first): in this order, the document is the same, byte for byte, as when every route was in this file.
app.include_router(job_routes.router)
app.include_router(artifact_routes.router)
app.include_router(report_routes.router)
app.include_router(bulk_routes.router)

# The routes that read a body (the others ignore one): only these check its media type and JSON.
BODY_ROUTES = {("POST", "/jobs"), ("POST", "/bulk/cancel"), ("POST", "/bulk/retry")}


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[dict[str, Any]]:
    tenant = caller_in(app).tenant
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
