"""Outbox function: the jobs table's stream -> the alerts and job events each write of a job owes.

Lambda reads the stream shard by shard, in order, and hands over only the writes of job items whose
new image owes something (the event source's FilterCriteria, template.yaml). Each record is handled
alone (Powertools BatchProcessor): one whose publish fails is logged at WARNING with its eventID and
the reason and reported in the partial batch response, and Lambda delivers the batch again from that
record on, so nothing after it is skipped. A record that still fails after MaximumRetryAttempts is
described in OutboxDLQ.

A write that took a job out of flight (it finished, or was cancelled) freed a slot of its tenant's job
type: the tenant's oldest HELD jobs of that type are released into the free slots first
(service/held.py), before the events go out, so a record retried after a failed publish repeats only
a release that finds nothing more to do, never an alert.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.adapters.job_stream import freed_slot, owed_by_write
from batchplane.failed_records.batches import EventType, process_batch
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.held import release_held
from batchplane.service.outbox import deliver
from batchplane.wiring import ports


def deliver_record(record: DynamoDBRecord) -> None:
    images = record.dynamodb.raw_event if record.dynamodb else {}
    freed = freed_slot(images.get("NewImage"), images.get("OldImage"))
    if freed is not None:
        release_held(ports(), freed.tenant, freed.job_type)
    write = owed_by_write(images.get("NewImage"), images.get("OldImage"))
    if write is not None:
        deliver(ports(), write.job, write.owed)


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A batch whose every record fails is reported record by record too, never raised: Lambda then
    # retries from the first, as it does for a partial failure.
    return dict(process_batch(event, deliver_record, EventType.DynamoDBStreams, context))
