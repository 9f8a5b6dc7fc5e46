"""Every error the API returns, in one place, as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from botocore.exceptions import ClientError

from batchplane.api.identity import Unauthenticated
from batchplane.errors import (
    BatchplaneError,
    BudgetExceeded,
    ConcurrentUpdate,
    ErrorDetail,
    IdempotencyConflict,
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
    QuotaExceeded,
    RequestTooLarge,
    TenantNotAllowed,
)
from batchplane.observability import logger

_STATUS: list[tuple[type[BatchplaneError], int, str]] = [
    (InvalidRequest, 422, "invalid_request"),
    (RequestTooLarge, 413, "request_too_large"),
    (TenantNotAllowed, 403, "forbidden"),
    (QuotaExceeded, 429, "quota_exceeded"),
    (BudgetExceeded, 429, "budget_exceeded"),
    (IdempotencyConflict, 409, "idempotency_conflict"),
    (JobNotFound, 404, "not_found"),
    (InvalidTransition, 409, "invalid_state"),
    (ConcurrentUpdate, 409, "concurrent_update"),
]


# What botocore's retries could not outlast: AWS throttling this caller, or failing for a moment.
# The caller may try again: a refused write wrote nothing, and a POST's Idempotency-Key makes a
# repeat safe.
_BUSY_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def error_body(code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [d.as_dict() for d in details or []]}}


def error_response(
    status: int, code: str, message: str, details: list[ErrorDetail] | None = None
) -> Response[Any]:
    return Response(
        status_code=status, content_type="application/json", body=error_body(code, message, details)
    )


def proxy_error(
    status: int, code: str, message: str, details: list[ErrorDetail] | None = None
) -> dict[str, Any]:
    """An API Gateway proxy response, for errors raised before the resolver runs."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error_body(code, message, details)),
        "isBase64Encoded": False,
    }


def _field_of(loc: tuple[Any, ...]) -> str:
    # ("body", "parameters", "input") -> "parameters.input"; ("query", "limit") -> "limit"
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header")
        else list(map(str, loc))
    )
    # A field named by the client may hold what UTF-8 cannot: shown escaped, never sent raw.
    return ".".join(parts).encode("utf-8", "backslashreplace").decode() or "body"


_REASONS = {
    "extra_forbidden": "unknown field",
    "missing": "required",
    "string_unicode": "not valid Unicode (a lone surrogate)",
}


def _reason_of(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "value_error" and "error" in err.get("ctx", {}):
        return str(err["ctx"]["error"])  # our validators' own words, without pydantic's "Value error, "
    return _REASONS.get(kind) or str(err.get("msg", "invalid"))


def _validation_details(errors: list[dict[str, Any]]) -> list[ErrorDetail]:
    return [ErrorDetail(_field_of(tuple(err.get("loc", ()))), _reason_of(err)) for err in errors]


def register(app: APIGatewayRestResolver) -> None:
    for exc_class, status, code in _STATUS:
        _register_domain_error(app, exc_class, status, code)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        errors = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            reason = next(
                str(e.get("ctx", {}).get("error", "")) for e in errors if e.get("type") == "json_invalid"
            )
            return error_response(
                400, "malformed_json", "the body is not valid JSON", [ErrorDetail("body", reason)]
            )
        return error_response(
            422, "invalid_request", "the request does not validate", _validation_details(errors)
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _not_json(exc: RequestUnsupportedContentType) -> Response[Any]:
        # Reached only if a body route escaped api/body.py's check: the same answer it gives.
        return error_response(
            415,
            "unsupported_media_type",
            "the body is not application/json",
            [ErrorDetail("Content-Type", str(exc))],
        )

    @app.exception_handler(Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> Response[Any]:
        return error_response(403, "forbidden", str(exc), [ErrorDetail("Authorization", str(exc))])

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        event = app.current_event
        return error_response(404, "not_found", f"no route {event.http_method} {event.path}")

    @app.exception_handler(ClientError)
    def _aws_refused(exc: ClientError) -> Response[Any]:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code not in _BUSY_CODES and status < 500:
            return _internal_error()
        logger.warning(
            "AWS busy after retries; answered 503", extra={"code": code, "operation": exc.operation_name}
        )
        busy = error_response(503, "unavailable", f"AWS is busy ({code}); try again shortly")
        busy.headers["Retry-After"] = "1"
        return busy

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[Any]:
        return _internal_error()


def _internal_error() -> Response[Any]:
    """A fault of ours: logged with its traceback (we are inside the exception handler), answered 500."""
    logger.exception("unhandled error")
    return error_response(500, "internal_error", "internal error; it has been logged")


def _register_domain_error(
    app: APIGatewayRestResolver, exc_class: type[BatchplaneError], status: int, code: str
) -> None:
    @app.exception_handler(exc_class)
    def _handle(exc: BatchplaneError) -> Response[Any]:
        return error_response(status, code, exc.message, exc.details)
