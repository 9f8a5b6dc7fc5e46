"""Coalescer function: SQS array queue -> AWS Batch array jobs, with partial-batch failure reporting."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.batches import EventType, process_batch
from batchplane.models.dispatch import DispatchMessage
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.coalesce import Arrival, coalesce
from batchplane.wiring import ports


def _arrival(record: dict[str, Any]) -> Arrival | None:
    """The record as an arrival; None for a body that is no dispatch message (it fails alone)."""
    try:
        message = DispatchMessage.model_validate_json(record["body"])
    except ValueError:
        return None
    count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    return Arrival(record["messageId"], message, count)


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The whole batch is grouped at once; then each record is reported alone, a failed one logged with
    # its messageId and reason, and SQS redelivers exactly those.
    arrivals = [a for a in map(_arrival, event.get("Records", [])) if a is not None]
    failed = coalesce(ports(), arrivals)
    taken = {a.message_id for a in arrivals}

    def outcome(record: SQSRecord) -> None:
        if record.message_id not in taken:
            DispatchMessage.model_validate_json(record.body)  # raises: the reason it is logged with
        if record.message_id in failed:
            raise RuntimeError("its group was not submitted; see the log lines before")

    return dict(process_batch(event, outcome, EventType.SQS, context))
