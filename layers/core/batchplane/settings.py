"""Runtime settings, read from environment variables and validated once.

Every Lambda gets its settings here, so a missing or malformed variable fails at the first invocation
with its name instead of deep inside a boto3 call. Nothing is read at import time.
"""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import ConfigDict, Field, ValidationError

from batchplane.models.base import Model


class SettingsError(RuntimeError):
    """The environment does not hold what batchplane needs."""


class Settings(Model):
    """The environment contract between template.yaml and the code; names are the variables'."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    JOBS_TABLE_NAME: str = Field(min_length=3)
    DISPATCH_QUEUE_URL: str = Field(min_length=1)
    ARRAY_QUEUE_URL: str = Field(
        default="", description="the coalescer's queue; empty: coalescible jobs are dispatched one by one"
    )
    SPOT_JOB_QUEUE: str = Field(min_length=1, description="name or ARN of the Spot job queue")
    ON_DEMAND_JOB_QUEUE: str = Field(min_length=1, description="name or ARN of the on-demand job queue")
    JOB_DEFINITION_PREFIX: str = Field(
        default="", description="prepended to the policy's job definition names (the stack's name)"
    )
    ARTIFACT_BUCKET: str = Field(min_length=3)
    POLICY_PATH: Path
    ALERT_TOPIC_ARN: str = Field(min_length=1)
    EVENT_BUS_NAME: str = Field(min_length=1)
    STALE_AFTER_SECONDS: int = Field(
        default=600, ge=60, description="the sweeper checks jobs quiet this long"
    )
    INGEST_BUCKET: str = ""
    RETENTION_DAYS: int = Field(
        default=90, ge=1, le=36500, description="finished jobs and their records expire this long after"
    )
    SUBMIT_RATE_PER_SECOND: float = Field(
        default=10.0, gt=0, description="SubmitJob calls per second one dispatcher instance may make"
    )
    JOB_LOG_GROUP: str = Field(
        default="/aws/batch/job", description="the Batch jobs' awslogs log group (awslogs' default on Batch)"
    )
    BATCH_READ_RATE_PER_SECOND: float = Field(
        default=20.0,
        gt=0,
        description="DescribeJobs and GetJobQueueSnapshot calls per second (the sweeper's pace)",
    )
    AWS_REGION: str = Field(default="us-east-1", description="set by Lambda: whose prices apply")
    PAGE_TOKEN_SECRET_ARN: str = Field(
        default="", description="the secret the API signs its page tokens with (read at first use)"
    )


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    try:
        return Settings.model_validate(env)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise SettingsError(f"batchplane settings are incomplete: {problems}") from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, validated on first use."""
    return load_settings()
