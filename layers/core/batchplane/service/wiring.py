"""Builds the production ports from settings, once per process and only when first needed."""

from __future__ import annotations

from functools import lru_cache

from batchplane.adapters.batch import BatchGateway, RateLimiter
from batchplane.adapters.clients import client
from batchplane.adapters.dispatch_queue import DispatchQueue
from batchplane.adapters.store import DynamoJobStore
from batchplane.policy.document import load_policy
from batchplane.policy.routing import Queues
from batchplane.service.ports import Ports
from batchplane.settings import get_settings


@lru_cache(maxsize=1)
def ports() -> Ports:
    settings = get_settings()
    return Ports(
        store=DynamoJobStore(settings.JOBS_TABLE_NAME, client("dynamodb")),
        dispatch=DispatchQueue(settings.DISPATCH_QUEUE_URL, client("sqs")),
        batch=BatchGateway(client("batch"), RateLimiter(settings.SUBMIT_RATE_PER_SECOND)),
        policy=load_policy(settings.POLICY_PATH),
        queues=Queues(spot=settings.SPOT_JOB_QUEUE, on_demand=settings.ON_DEMAND_JOB_QUEUE),
        artifact_bucket=settings.ARTIFACT_BUCKET,
        definition_prefix=settings.JOB_DEFINITION_PREFIX,
    )
