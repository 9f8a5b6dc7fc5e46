"""Powertools Logger and Metrics, one of each per process, and X-Ray tracing where it is switched on.

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE (the
template sets both), "batchplane" when unset. Code records a metric one way, `metric(...)`.
Powertools' Tracer imports the X-Ray SDK (about 200 ms of cold start, see bench/cold_start.py) even
when disabled, so a function with POWERTOOLS_TRACE_DISABLED=true never builds one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

__all__ = ["MetricUnit", "logger", "metric", "metrics", "trace_handler"]

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "batchplane"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "batchplane"

logger = Logger(service=SERVICE)
# Flushed by each handler's @metrics.log_metrics: every dimensionless metric of an invocation in one
# EMF document.
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

Handler = TypeVar("Handler", bound=Callable[..., Any])


def metric(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count, **dimensions: str) -> None:
    """Record one metric. Without dimensions it joins the invocation's batch (flushed by the handler);
    with its own dimensions (job type, failure class) it is an EMF document of its own, flushed at once,
    as one Metrics object has one set of dimensions per flush.

    With metrics off (POWERTOOLS_METRICS_DISABLED, as the local stack runs) it records nothing:
    Powertools would keep adding to the one Metrics object, never flushed, and print a batch of 100
    as it fills, iterating it while invocations running side by side in one process add to it."""
    if is_metrics_disabled():
        return
    if not dimensions:
        metrics.add_metric(name=name, unit=unit, value=value)
        return
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as one:
        for key, dimension in dimensions.items():
            one.add_dimension(name=key, value=dimension)


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in (
        "1",
        "true",
        "yes",
        "on",
    )


def trace_handler(handler: Handler) -> Handler:
    """Tracer.capture_lambda_handler when tracing is on; the handler itself when it is off."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return cast(Handler, Tracer(service="batchplane").capture_lambda_handler(handler, capture_response=False))
