"""Why a job waits in Batch, and where: its attempt's state, Batch's reason and its place in the queue.

`QueueFront` is Batch's GetJobQueueSnapshot of one job queue: its first 100 RUNNABLE jobs in the order
Batch will start them. The sweeper takes one per job queue each run and keeps it; `GET /jobs/{job_id}`
reads it for a RUNNABLE job (lifecycle/waiting.py).
"""

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.job import AttemptStatus
from batchplane.models.time import UtcDatetime

FRONT_OF_QUEUE = 100  # GetJobQueueSnapshot lists the first 100 RUNNABLE jobs of a queue


class QueueFront(Model):
    """The first RUNNABLE jobs of a Batch job queue, by Batch job id, in the order Batch starts them."""

    model_config = ConfigDict(extra="forbid")

    queue: str
    batch_job_ids: list[str] = Field(default_factory=list, max_length=FRONT_OF_QUEUE)
    as_of: UtcDatetime = Field(description="when Batch last updated the snapshot (its lastUpdatedAt)")

    def position_of(self, batch_job_id: str) -> int | None:
        """1 for the next job Batch starts; None when the job is not among the first 100."""
        try:
            return self.batch_job_ids.index(batch_job_id) + 1
        except ValueError:
            return None


class Waiting(Model):
    """A job whose attempt waits in Batch (SUBMITTED, PENDING, RUNNABLE or STARTING)."""

    model_config = ConfigDict(extra="forbid")

    status: AttemptStatus
    reason: str | None = Field(
        default=None, description="Batch's statusReason for the wait, as its last event or the sweeper saw it"
    )
    since: UtcDatetime = Field(description="when the attempt reached this state")
    position: int | None = Field(
        default=None, ge=1, description="1: the next job Batch starts in its queue; only among its first 100"
    )
    position_note: str = Field(description="where the position comes from, or why there is none")
    position_as_of: UtcDatetime | None = Field(
        default=None, description="when Batch last updated the queue snapshot the position is from"
    )
