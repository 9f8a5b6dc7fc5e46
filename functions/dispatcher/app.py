"""Dispatcher function: SQS dispatch queue -> SubmitJob, with partial-batch failure reporting."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.batches import EventType, process_batch
from batchplane.models.dispatch import DispatchMessage
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.dispatch import dispatch
from batchplane.wiring import ports


def dispatch_record(record: SQSRecord) -> None:
    message = DispatchMessage.model_validate_json(record.body)
    dispatch(ports(), message, receive_count=int(record.attributes.approximate_receive_count))


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A failed record is logged with its messageId and reason, and SQS redelivers exactly those.
    return dict(process_batch(event, dispatch_record, EventType.SQS, context))
