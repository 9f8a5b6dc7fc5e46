"""An attempt's progress on a non-terminal Batch event: the fields one conditional write sets."""

from dataclasses import dataclass
from datetime import datetime

from batchplane.models.job import AttemptStatus, JobStatus


@dataclass(frozen=True)
class Progress:
    """A non-terminal event, as the fields it sets on its attempt."""

    number: int
    batch_job_id: str
    status: AttemptStatus
    at: datetime
    started_at: datetime | None
    log_stream: str | None
    # Batch's reason for a RUNNABLE wait (e.g. CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - ...).
    status_reason: str | None = None
    # An array child's (the event's jobName and arrayProperties.index): an attempt claimed at exactly
    # this place, whose batch_job_id is not known yet, takes the event's child id in the same write.
    array_name: str | None = None
    array_index: int | None = None

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status.value)
