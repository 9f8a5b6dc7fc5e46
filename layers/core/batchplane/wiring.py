"""The composition root: the production ports built from settings, once per process and only when
first needed; each boto3 client is made when its service is first called. The one module that
knows both the service layer and the adapters."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from batchplane.adapters.array_items import DynamoArrayBook
from batchplane.adapters.batch import BatchGateway, RateLimiter
from batchplane.adapters.clients import LazyClient
from batchplane.adapters.dispatch_queue import DispatchQueue
from batchplane.adapters.job_logs import CloudWatchJobLogs
from batchplane.adapters.manifests import S3Manifests
from batchplane.adapters.notify import Notifier
from batchplane.adapters.operations import DynamoOperations
from batchplane.adapters.secrets import SecretKey
from batchplane.adapters.store import DynamoJobStore
from batchplane.adapters.sweep_items import DynamoSweepBook
from batchplane.policy.cost import pricing_for
from batchplane.policy.document import load_policy
from batchplane.policy.routing import Queues
from batchplane.service.ports import JobLogs, Ports
from batchplane.settings import get_settings

if TYPE_CHECKING:  # types only: each LazyClient stands in for the client it will make
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


@lru_cache(maxsize=1)
def ports() -> Ports:
    settings = get_settings()
    policy = load_policy(settings.POLICY_PATH)
    pricing = pricing_for(policy, settings.AWS_REGION)
    return Ports(
        store=DynamoJobStore(
            settings.JOBS_TABLE_NAME,
            cast("DynamoDBClient", LazyClient("dynamodb")),
            retention=timedelta(days=settings.RETENTION_DAYS),
            pricing=pricing,
        ),
        dispatch=DispatchQueue(
            settings.DISPATCH_QUEUE_URL,
            cast("SQSClient", LazyClient("sqs")),
            array_queue_url=settings.ARRAY_QUEUE_URL,
        ),
        batch=BatchGateway(
            cast("BatchClient", LazyClient("batch")),
            RateLimiter(settings.SUBMIT_RATE_PER_SECOND),
            read_limiter=RateLimiter(settings.BATCH_READ_RATE_PER_SECOND),
        ),
        policy=policy,
        queues=Queues(spot=settings.SPOT_JOB_QUEUE, on_demand=settings.ON_DEMAND_JOB_QUEUE),
        notify=Notifier(
            sns=cast("SNSClient", LazyClient("sns")),
            topic_arn=settings.ALERT_TOPIC_ARN,
            events=cast("EventBridgeClient", LazyClient("events")),
            bus_name=settings.EVENT_BUS_NAME,
        ),
        operations=DynamoOperations(cast("DynamoDBClient", LazyClient("dynamodb")), settings.JOBS_TABLE_NAME),
        arrays=DynamoArrayBook(
            settings.JOBS_TABLE_NAME,
            cast("DynamoDBClient", LazyClient("dynamodb")),
            retention=timedelta(days=settings.RETENTION_DAYS),
        ),
        manifests=S3Manifests(settings.ARTIFACT_BUCKET, cast("S3Client", LazyClient("s3"))),
        sweeps=DynamoSweepBook(settings.JOBS_TABLE_NAME, cast("DynamoDBClient", LazyClient("dynamodb"))),
        artifact_bucket=settings.ARTIFACT_BUCKET,
        ingest_bucket=settings.INGEST_BUCKET,
        definition_prefix=settings.JOB_DEFINITION_PREFIX,
        stale_after=timedelta(seconds=settings.STALE_AFTER_SECONDS),
        pricing=pricing,
    )


@lru_cache(maxsize=1)
def page_token_key() -> SecretKey:
    """The key of the API's page tokens: read from Secrets Manager at its first use in a process."""
    client = cast("SecretsManagerClient", LazyClient("secretsmanager"))
    return SecretKey(client, get_settings().PAGE_TOKEN_SECRET_ARN)


@lru_cache(maxsize=1)
def job_logs() -> JobLogs:
    """The Batch jobs' logs (CloudWatch Logs): only the API reads them, so not one of the ports."""
    return CloudWatchJobLogs(LazyClient("logs"), get_settings().JOB_LOG_GROUP)
