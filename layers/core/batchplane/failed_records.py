"""What a function gives up on, said once, at WARNING, with the record's id and the reason.

A record of an SQS or stream batch that fails goes back to its queue or shard (partial batch
response): SQS delivers it again and, after its last receive, moves it to the DLQ; the stream
delivers the shard again from it. An EventBridge event whose handler raises is retried by Lambda and
then kept in the function's DLQ. Either way the log says which record (SQS messageId, stream eventID,
EventBridge event id) and why (the exception's type and message), never the payload: a message should
never reach a DLQ without a line that says why.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    ExceptionInfo,
    FailureResponse,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from batchplane.observability import logger

__all__ = ["EventType", "logs_failed_event", "process_batch", "reason_of"]

# Enough for any of our errors' messages; a longer one is cut rather than flood the log.
REASON_LIMIT = 500

Handler = TypeVar("Handler", bound=Callable[..., Any])


def reason_of(error: BaseException) -> str:
    """The exception's type and message. A validation error is told by field and problem, without the
    value it refused: that value is the payload (pydantic's own message quotes it)."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(whole)'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False, include_context=False)
        )
        text = f"{error.error_count()} validation error(s) for {error.title}: {problems}"
    else:
        text = str(error)
    reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


def _record_identity(record: object) -> dict[str, str | None]:
    """The ids an operator looks a record up by: the one the partial batch response names, and more."""
    if isinstance(record, SQSRecord):
        return {
            "event_source": "aws:sqs",
            "record_id": record.message_id,
            "receive_count": record.attributes.approximate_receive_count,
        }
    if isinstance(record, DynamoDBRecord):
        return {
            "event_source": "aws:dynamodb",
            "record_id": record.event_id,
            "sequence_number": record.dynamodb.sequence_number if record.dynamodb else None,
        }
    return {"event_source": None, "record_id": None}


class LoggedBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, which says nothing above DEBUG about a failed record, saying once,
    at WARNING, which record failed and why before it goes back in the partial batch response."""

    def failure_handler(self, record: Any, exception: ExceptionInfo) -> FailureResponse:
        response = super().failure_handler(record, exception)
        error = exception[1]
        logger.warning(
            "record failed; it goes back to its queue (after its last try, to the DLQ)",
            extra={**_record_identity(record), "reason": reason_of(error) if error else "unknown"},
        )
        return response


def process_batch(
    event: dict[str, Any],
    record_handler: Callable[[Any], Any],
    event_type: EventType,
    context: LambdaContext,
) -> PartialItemFailureResponse:
    """Each record of an SQS or stream batch handled alone; the failed ones reported back.

    Even a batch whose every record failed is reported record by record, never raised: SQS then
    redelivers exactly those, and a stream retries from the first. A processor of its own for each
    invocation: it holds the invocation's records and failures, so two invocations running at once in
    one process (the local stack runs a function's invocations side by side) never share one.
    """
    processor = LoggedBatchProcessor(event_type=event_type, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def logs_failed_event(handler: Handler) -> Handler:
    """For a function EventBridge invokes (asynchronously): an event whose handling raises is logged
    once, at WARNING, with its id and the reason, then raised again, so Lambda retries it and then keeps
    it in the function's DLQ."""

    @functools.wraps(handler)
    def logged(event: dict[str, Any], context: LambdaContext) -> Any:
        try:
            return handler(event, context)
        except Exception as error:
            known = event if isinstance(event, dict) else {}
            logger.warning(
                "event failed; raised for Lambda to retry (after its last try, to the DLQ)",
                extra={
                    "event_source": known.get("source"),
                    "record_id": known.get("id"),
                    "detail_type": known.get("detail-type"),
                    "reason": reason_of(error),
                },
            )
            raise

    return cast(Handler, logged)
