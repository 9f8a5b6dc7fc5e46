"""State-change function: EventBridge "Batch Job State Change" (batchplane's queues) -> lifecycle."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.events import logs_failed_event
from batchplane.models.batch_event import BatchJobDetail
from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.state_change import handle_state_change
from batchplane.wiring import ports


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
@logs_failed_event
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    detail = BatchJobDetail.model_validate(EventBridgeEvent(event).detail)
    handled = handle_state_change(ports(), detail)
    return {"outcome": handled.outcome.value, "job_id": handled.job.job_id if handled.job else ""}
