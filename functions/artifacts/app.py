"""Artifacts function: EventBridge "Object Created" under the artifact bucket's outputs/ -> an output
artifact of the attempt that wrote it (service/artifacts.py)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.events import logs_failed_event
from batchplane.models.s3_event import objects_in
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.artifacts import record_outputs
from batchplane.wiring import ports


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
@logs_failed_event
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # An exception makes Lambda retry the event, then keep it in the DLQ: recording is idempotent.
    recorded = record_outputs(ports(), objects_in(event))
    return {"recorded": recorded.recorded, "skipped": len(recorded.skipped)}
