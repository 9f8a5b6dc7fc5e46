"""Sweeper function: scheduled (EventBridge) -> reconcile quiet jobs with Batch."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from batchplane.observability import logger, metrics, trace_handler
from batchplane.service.sweep import sweep
from batchplane.wiring import ports


@logger.inject_lambda_context
@metrics.log_metrics
@trace_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep(ports())
    return {
        "checked": report.checked,
        "redispatched": len(report.redispatched),
        "reconciled": len(report.reconciled),
        "adopted": len(report.adopted),
        "vanished": len(report.vanished),
        "stuck": len(report.stuck),
        "released": len(report.released),
    }
