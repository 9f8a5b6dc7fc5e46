"""Outbox function: the jobs table's stream -> the alerts and job events each write of a job owes.

Lambda reads the stream shard by shard, in order, and hands over only the writes of job items whose
new image owes something (the event source's FilterCriteria, template.yaml). Each record is handled
alone (Powertools BatchProcessor): one whose publish fails is reported in the partial batch response,
and Lambda delivers the batch again from that record on, so nothing after it is skipped. A record that
still fails after MaximumRetryAttempts is described in OutboxDLQ.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.adapters.job_stream import owed_by_write
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.outbox import deliver
from batchplane.wiring import ports

# A batch whose every record fails is reported record by record too, never raised: Lambda then
# retries from the first, as it does for a partial failure.
# A failed record is logged at WARNING with its traceback: why it comes back, and why it ends in the DLQ.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False, logger=logger
)


def deliver_record(record: DynamoDBRecord) -> None:
    images = record.dynamodb.raw_event if record.dynamodb else {}
    write = owed_by_write(images.get("NewImage"), images.get("OldImage"))
    if write is not None:
        deliver(ports(), write.job, write.owed)


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=deliver_record, processor=processor, context=context
    )
