"""The records of an SQS or stream batch, each handled alone; one that fails is logged with its id and
the reason, then named in the partial batch response so that it goes back to its queue or shard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

from batchplane.failed_records.reasons import reason_of
from batchplane.observability import logger

__all__ = ["EventType", "LoggedBatchProcessor", "process_batch"]


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
