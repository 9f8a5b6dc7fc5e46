"""File-drop function: SQS ingest queue (S3 object-created notifications) -> one job per object.

Each SQS record is handled alone: a record that fails for a transient reason is reported in the
partial batch response and retried by SQS without its neighbours; a malformed one ends in the DLQ.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.models.s3_event import objects_in
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.ingest import ingest_object
from batchplane.wiring import ports

# A failed record is logged at WARNING with its traceback: why it comes back, and why it ends in the DLQ.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=logger)


def ingest_record(record: SQSRecord) -> None:
    for obj in objects_in(json.loads(record.body)):
        ingest_object(ports(), obj)


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return process_partial_response(
            event=event, record_handler=ingest_record, processor=processor, context=context
        )
    # Invoked by S3 or EventBridge directly: an exception makes Lambda retry the whole event,
    # which idempotency makes safe.
    for obj in objects_in(event):
        ingest_object(ports(), obj)
    return {"batchItemFailures": []}
