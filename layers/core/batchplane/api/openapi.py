"""What the OpenAPI document says each route answers: every status it can answer, each error in the
one shape the API answers them in (`schemas.py::ErrorBody`), the headers of a submitted job, and the
links from a job to the operations on it, which a client (or schemathesis) can follow."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from batchplane.api.schemas import ErrorBody
from batchplane.models.inputs import Area
from batchplane.models.policy import JobType, PolicyDocument
from batchplane.models.scheduling import PriorityRange

# A key's path under an input area, as admission takes it (models/s3_uri.py::path_problem): segments
# of plain characters, none "." or "..", no "//", no percent-escape. Narrower than what admission
# accepts, so a client that keeps to the document is never refused for a key's spelling.
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
_KEY_PATH = rf"(?:{_SEGMENT}/)*{_SEGMENT}"


def _within(areas: list[Area]) -> str:
    """A pattern matching exactly the object URIs under `areas` (the caller's input sources)."""
    starts = "|".join(re.escape(str(area)) for area in areas) or "(?!)"
    return rf"^(?:{starts}){_KEY_PATH}$"


ERRORS: dict[int, str] = {
    400: "malformed_json: the body is not JSON, or is JSON deeper or with longer numbers than the API reads",
    403: (
        "forbidden: no tenant in the caller's identity, the policy does not let the tenant run the job "
        "type, or a caller not among the policy's api.operators asked for other tenants' jobs; API "
        "Gateway's own refusals (an unsigned request, an unknown route or method) in this shape too"
    ),
    404: "not_found: no such job for this tenant (or attempt, or log: details name which)",
    409: (
        "idempotency_conflict, invalid_state (the job's state does not allow it) or concurrent_update "
        "(another writer came first: try again)"
    ),
    413: "request_too_large: the body is over the API's limit (bytes after base64), or the job type's",
    415: "unsupported_media_type: the body is not application/json (charset utf-8, if named)",
    422: "invalid_request: a field, parameter, header or page token does not validate; details name each",
    429: (
        "quota_exceeded: the tenant is at its in-flight limit for the job type, or has jobs of it held "
        "(send `when_over_limit: hold` to be held instead); budget_exceeded: the job could take the "
        "tenant's month past its budget (details name `budget`); or API Gateway's throttling"
    ),
    500: "internal_error: a fault of batchplane's, logged with the request id",
    503: "unavailable: AWS throttled or failed a call after retries; try again after Retry-After",
}

# Every route: a caller without a tenant, any body over the API's limit, a parameter that does not
# validate, API Gateway's throttling, a fault of ours, and AWS busy past botocore's retries.
COMMON = (403, 413, 422, 429, 500, 503)

JOB_ID = "$response.body#/job_id"


def _link(operation_id: str, description: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {"job_id": JOB_ID}, "description": description}


# From a job, the operations on it: what a client does next, and the sequences schemathesis follows.
LINKS_OF_A_JOB: dict[str, Any] = {
    "GetJob": _link("get_job", "the job, with its attempts, history and artifacts"),
    "GetJobArtifacts": _link("get_job_artifacts", "every artifact of the job"),
    "CancelJob": _link("cancel_job", "cancel the job"),
    "RetryJob": _link("retry_job", "a new attempt of the job, once it failed or was cancelled"),
}

SUBMITTED_HEADERS: dict[str, Any] = {
    "Location": {"description": "the job's URL, /jobs/{job_id}", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when the Idempotency-Key made this job before and nothing was written",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def responses(
    ok: int,
    description: str,
    *errors: int,
    links: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
) -> dict[int, OpenAPIResponse]:
    """The route's success (its body is the route's return type) and its errors, COMMON included."""
    success: OpenAPIResponse = {"description": description}
    if links:
        success["links"] = links
    if headers:
        success["headers"] = headers
    declared: dict[int, OpenAPIResponse] = {ok: success}
    for status in sorted({*COMMON, *errors}):
        declared[status] = {
            "description": ERRORS[status],
            "content": {"application/json": {"model": ErrorBody}},
        }
    return declared


def _submission(
    name: str, job_type: JobType, areas: list[Area], priority: PriorityRange | None
) -> dict[str, Any]:
    """POST /jobs's body for one job type, as admission checks it (policy/admission.py): the generic
    body, narrowed to the type's parameters, their patterns and its resources' maximums; a parameter
    that names an object (its pattern starts with s3://) also to the caller's input sources; the
    priority to the caller's range."""
    resources = job_type.resources
    parameters = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            key: {"type": "string", "pattern": rule.pattern, "maxLength": rule.max_length}
            | ({"allOf": [{"pattern": _within(areas)}]} if rule.pattern.startswith("^s3://") else {})
            | ({"default": rule.default} if rule.default is not None else {})
            for key, rule in job_type.parameters.items()
        },
        "required": sorted(key for key, rule in job_type.parameters.items() if rule.required),
    }
    narrowed = {
        "properties": {
            "job_type": {"const": name},
            "parameters": parameters,
            "vcpus": {"type": "integer", "minimum": 1, "maximum": resources.vcpus.max},
            "memory_mib": {"type": "integer", "minimum": 1, "maximum": resources.memory_mib.max},
        }
        | (
            {}
            if priority is None
            else {
                "priority": {
                    "type": "integer",
                    "minimum": priority.min,
                    "maximum": priority.max,
                    "default": priority.default,
                }
            }
        ),
        "required": ["job_type", "parameters"] if parameters["required"] else ["job_type"],
    }
    return {
        "title": name,
        "description": job_type.description,
        "allOf": [{"$ref": "#/components/schemas/SubmitJobBody"}, narrowed],
    }


def with_job_types(
    document: dict[str, Any],
    policy: PolicyDocument,
    areas: list[Area],
    priority: PriorityRange | None = None,
) -> dict[str, Any]:
    """POST /jobs's body as one of the policy's job types, each with its parameters' patterns and
    its resources' maximums, objects within the caller's input `areas`, `priority` within the
    caller's range: what the deployment admits for this caller, not just what parses."""
    schemas = document["components"]["schemas"]
    for name, job_type in policy.job_types.items():
        schemas[f"SubmitJob_{name}"] = _submission(name, job_type, areas, priority)
    body = document["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = {
        "oneOf": [{"$ref": f"#/components/schemas/SubmitJob_{name}"} for name in policy.job_types],
        "discriminator": {"propertyName": "job_type"},
    }
    return document


def pruned(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the component schemas nothing refers to: Powertools adds its own
    validation error shapes, which this API never answers with (its 422 is an ErrorBody)."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return document
        for name in unused:
            del schemas[name]
