"""Sweeper function: scheduled (EventBridge) -> reconcile quiet jobs with Batch, count jobs by state."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.sweep import sweep
from batchplane.wiring import ports

# Time kept back from the function's timeout: the chunk under way (a BatchGetItem, a DescribeJobs and
# the writes of what changed) and the cursor's write finish inside it.
RESERVE_MS = 20_000


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep(ports(), has_time=lambda: context.get_remaining_time_in_millis() > RESERVE_MS)
    return {
        "checked": report.checked,
        "unfinished": report.unfinished,
        "complete": report.complete,
        "by_state": report.by_state,
        "redispatched": len(report.redispatched),
        "reconciled": len(report.reconciled),
        "adopted": len(report.adopted),
        "vanished": len(report.vanished),
        "stuck": len(report.stuck),
        "ended_waits": len(report.ended_waits),
        "released": len(report.released),
    }
