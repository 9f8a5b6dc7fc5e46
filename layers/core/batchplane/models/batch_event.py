"""The detail of an EventBridge "Batch Job State Change" or "Batch Job Queue Blocked" event (and of a
DescribeJobs job).

Only the fields batchplane reads are declared; AWS adds fields over time, and they are accepted and
ignored. DescribeJobs returns the same shape, so the sweeper reuses this model. A queue-blocked
event's detail is the one RUNNABLE job at the head of the queue that blocks it, as DescribeJobs shows
it: its `jobQueue`, and Batch's reason in `statusReason` (`MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT -
...`, `CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ...`); the event's `resources` name the job and the
queue. It names no other job: the jobs behind it are not blocked by anything of their own.
"""

from datetime import datetime

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.time import from_epoch_ms

STATE_CHANGE = "Batch Job State Change"
QUEUE_BLOCKED = "Batch Job Queue Blocked"
DETAIL_TYPES = (STATE_CHANGE, QUEUE_BLOCKED)


class _Lenient(Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class BatchContainer(_Lenient):
    exit_code: int | None = Field(default=None, alias="exitCode")
    reason: str | None = None
    log_stream_name: str | None = Field(default=None, alias="logStreamName")


class BatchAttempt(_Lenient):
    container: BatchContainer | None = None
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    status_reason: str | None = Field(default=None, alias="statusReason")


class BatchArrayProperties(_Lenient):
    """`index` on an array job's child, `size` (and `statusSummary`, not read) on its parent."""

    index: int | None = None
    size: int | None = None


class BatchJobDetail(_Lenient):
    job_id: str = Field(alias="jobId")
    job_name: str = Field(alias="jobName")
    job_queue: str = Field(alias="jobQueue")
    status: str
    status_reason: str | None = Field(default=None, alias="statusReason")
    attempts: list[BatchAttempt] = Field(default_factory=list)
    container: BatchContainer | None = None
    created_at: int | None = Field(default=None, alias="createdAt")
    started_at: int | None = Field(default=None, alias="startedAt")
    stopped_at: int | None = Field(default=None, alias="stoppedAt")
    tags: dict[str, str] = Field(default_factory=dict)
    array_properties: BatchArrayProperties | None = Field(default=None, alias="arrayProperties")

    @property
    def array_index(self) -> int | None:
        """A child's index in its array job ("<parent>:<index>"); None for any other job."""
        return self.array_properties.index if self.array_properties else None

    @property
    def array_size(self) -> int | None:
        """An array job's size: set on the parent only."""
        return self.array_properties.size if self.array_properties else None

    @property
    def last_attempt(self) -> BatchAttempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def exit_code(self) -> int | None:
        for container in self._containers():
            if container.exit_code is not None:
                return container.exit_code
        return None

    @property
    def log_stream(self) -> str | None:
        for container in self._containers():
            if container.log_stream_name:
                return container.log_stream_name
        return None

    def _containers(self) -> list[BatchContainer]:
        """The last attempt's container first: it is the one this status is about."""
        found = [self.last_attempt.container] if self.last_attempt and self.last_attempt.container else []
        if self.container is not None:
            found.append(self.container)
        return found

    def reasons(self) -> list[str]:
        """Every reason Batch gave, most specific first: attempt and container reasons, then the job's."""
        texts: list[str | None] = []
        last = self.last_attempt
        if last is not None:
            texts.append(last.container.reason if last.container else None)
            texts.append(last.status_reason)
        texts.append(self.container.reason if self.container else None)
        texts.append(self.status_reason)
        return [t for t in texts if t]

    def time(self, epoch_ms: int | None) -> datetime | None:
        return from_epoch_ms(epoch_ms) if epoch_ms else None


def job_detail_of(detail_type: str, detail: object) -> BatchJobDetail:
    """The Batch job an aws.batch event speaks of; ValueError for a detail-type that speaks of none."""
    if detail_type not in DETAIL_TYPES:
        raise ValueError(f"not an event about a Batch job: detail-type {detail_type!r}")
    return BatchJobDetail.model_validate(detail)
