"""File-drop function: SQS ingest queue (S3 object-created notifications) -> one job per object.

Each SQS record is handled alone: a record that fails for a transient reason is reported in the
partial batch response and retried by SQS without its neighbours; a malformed one ends in the DLQ.
Either is logged at WARNING with its messageId and the reason first.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.batches import EventType, process_batch
from batchplane.failed_records.events import logs_failed_event
from batchplane.models.s3_event import objects_in
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.ingest import ingest_object
from batchplane.wiring import ports


def ingest_record(record: SQSRecord) -> None:
    for obj in objects_in(json.loads(record.body)):
        ingest_object(ports(), obj)


@logs_failed_event
def ingest_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Invoked by S3 or EventBridge directly: an exception makes Lambda retry the whole event, which
    idempotency makes safe."""
    for obj in objects_in(event):
        ingest_object(ports(), obj)
    return {"batchItemFailures": []}


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        return dict(process_batch(event, ingest_record, EventType.SQS, context))
    return ingest_event(event, context)
