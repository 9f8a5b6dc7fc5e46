"""State-change function: EventBridge "Batch Job State Change" and "Batch Job Queue Blocked"
(batchplane's queues) -> lifecycle. A blocked queue's event is its blocking RUNNABLE job with Batch's
reason: it goes the way of that job's RUNNABLE event (service/state_change.py::end_wait)."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.failed_records.events import logs_failed_event
from batchplane.models.batch_event import QUEUE_BLOCKED, job_detail_of
from batchplane.observability import logger, metric, metrics, trace_handler
from batchplane.service.state_change import handle_state_change
from batchplane.wiring import ports


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
@logs_failed_event
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    received = EventBridgeEvent(event)
    detail = job_detail_of(received.detail_type, received.detail)
    if received.detail_type == QUEUE_BLOCKED:
        logger.warning(
            "Batch job queue blocked",
            extra={
                "job_queue": detail.job_queue,
                "batch_job": detail.job_name,
                "reason": detail.status_reason,
            },
        )
        metric("QueueBlocked", queue=detail.job_queue.rsplit("/", 1)[-1])
    handled = handle_state_change(ports(), detail)
    return {"outcome": handled.outcome.value, "job_id": handled.job.job_id if handled.job else ""}
