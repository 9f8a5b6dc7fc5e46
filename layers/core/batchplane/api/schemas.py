"""The REST API's request and response shapes: the public contract, separate from the domain."""

from typing import Self

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.job import (
    ArtifactRole,
    AttemptStatus,
    Capacity,
    FailureClass,
    Job,
    JobStatus,
)
from batchplane.models.time import UtcDatetime


class InputObject(Model):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$", max_length=2048)


class SubmitJobBody(Model):
    """POST /jobs. The tenant comes from the caller's identity, never from here."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=64, examples=["word-count"])
    parameters: dict[str, str] = Field(default_factory=dict, examples=[{"input": "s3://bucket/in.txt"}])
    vcpus: int | None = Field(default=None, ge=1, le=256)
    memory_mib: int | None = Field(default=None, ge=1, le=1_048_576)
    inputs: list[InputObject] = Field(default_factory=list, max_length=100)


class AttemptView(Model):
    number: int
    batch_job_id: str | None
    queue: str
    capacity: Capacity
    vcpus: int
    memory_mib: int
    status: AttemptStatus
    status_reason: str | None
    exit_code: int | None
    failure_class: FailureClass | None
    log_stream: str | None
    submitted_at: UtcDatetime
    started_at: UtcDatetime | None
    stopped_at: UtcDatetime | None


class HistoryView(Model):
    at: UtcDatetime
    event: str
    reason: str


class ArtifactView(Model):
    uri: str
    size: int | None
    etag: str | None
    role: ArtifactRole


class JobView(Model):
    job_id: str
    tenant: str
    job_type: str
    status: JobStatus
    parameters: dict[str, str]
    vcpus: int
    memory_mib: int
    inputs: list[str]
    output_prefix: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    attempts: list[AttemptView]
    history: list[HistoryView]
    artifacts: list[ArtifactView]

    @classmethod
    def of(cls, job: Job) -> Self:
        return cls.model_validate(job.model_dump())


class JobList(Model):
    jobs: list[JobView]
    next_token: str | None
