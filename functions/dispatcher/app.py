"""Dispatcher function: SQS dispatch queue -> SubmitJob, with partial-batch failure reporting."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.models.dispatch import DispatchMessage
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.dispatch import dispatch
from batchplane.wiring import ports

# Report every failed record, even when all failed, so SQS redelivers exactly those.
# A failed record is logged at WARNING with its traceback: why it comes back, and why it ends in the DLQ.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)


def dispatch_record(record: SQSRecord) -> None:
    message = DispatchMessage.model_validate_json(record.body)
    dispatch(ports(), message, receive_count=int(record.attributes.approximate_receive_count))


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=dispatch_record, processor=processor, context=context
    )
