"""A job, its attempts, its history and its artifacts: the domain's core values."""

from enum import StrEnum

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.outbox import OwedEvent
from batchplane.models.time import UtcDatetime


class JobStatus(StrEnum):
    HELD = "HELD"  # over its tenant's in-flight limit: waits, outside the count, to be released in order
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RETRY_WAIT = "RETRY_WAIT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def is_in_flight(self) -> bool:
        """Counted against the tenant's in-flight limit: unfinished and not held."""
        return not self.is_terminal and self is not JobStatus.HELD


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
# States in which no Batch job of the current attempt exists yet; dispatch may (re)submit from here.
DISPATCHABLE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RETRY_WAIT})
# States in which the current attempt is in Batch's hands; its events move the job.
IN_BATCH_STATUSES = frozenset(
    {JobStatus.SUBMITTED, JobStatus.PENDING, JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING}
)


class AttemptStatus(StrEnum):
    """An attempt follows its Batch job; Batch sends no event for SUBMITTED, the dispatcher records it."""

    SUBMITTED = "SUBMITTED"
    PENDING = "PENDING"
    RUNNABLE = "RUNNABLE"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def rank(self) -> int:
        """Order of progress: an event may only move an attempt to a higher rank."""
        return _ATTEMPT_RANK[self]

    @property
    def is_terminal(self) -> bool:
        return self in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)


_ATTEMPT_RANK = {
    AttemptStatus.SUBMITTED: 1,
    AttemptStatus.PENDING: 2,
    AttemptStatus.RUNNABLE: 3,
    AttemptStatus.STARTING: 4,
    AttemptStatus.RUNNING: 5,
    AttemptStatus.SUCCEEDED: 6,
    AttemptStatus.FAILED: 6,
}


class Capacity(StrEnum):
    SPOT = "SPOT"
    ON_DEMAND = "ON_DEMAND"


class FailureClass(StrEnum):
    SPOT_INTERRUPTED = "SPOT_INTERRUPTED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TIMEOUT = "TIMEOUT"
    INFRASTRUCTURE = "INFRASTRUCTURE"
    APPLICATION = "APPLICATION"
    CANCELLED = "CANCELLED"
    INPUT_CHANGED = "INPUT_CHANGED"
    # Batch says the attempt can never be placed (RUNNABLE with a MISCONFIGURATION:* reason): never retried.
    MISCONFIGURATION = "MISCONFIGURATION"
    # The attempt waited in RUNNABLE for capacity that did not come (CAPACITY:* or no start on Spot in
    # time) and was ended: on Spot it falls back to on-demand, using the SPOT_INTERRUPTED budget.
    CAPACITY_STARVED = "CAPACITY_STARVED"
    UNKNOWN = "UNKNOWN"


class ArtifactRole(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class Attempt(Model):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    batch_job_id: str | None = None
    job_name: str
    queue: str
    job_definition: str
    capacity: Capacity
    vcpus: int
    memory_mib: int
    status: AttemptStatus = AttemptStatus.SUBMITTED
    status_reason: str | None = None
    exit_code: int | None = None
    failure_class: FailureClass | None = None
    log_stream: str | None = None
    submitted_at: UtcDatetime
    runnable_at: UtcDatetime | None = None
    starting_at: UtcDatetime | None = None
    started_at: UtcDatetime | None = None
    stopped_at: UtcDatetime | None = None
    # A child of an array job (service/coalesce.py): its array's name and its index there. Its
    # batch_job_id, "<parent_job_id>:<index>", is None until an event or the coalescer names it.
    array_name: str | None = None
    array_index: int | None = None


class HistoryEntry(Model):
    model_config = ConfigDict(extra="forbid")

    at: UtcDatetime
    event: str
    reason: str


class Artifact(Model):
    model_config = ConfigDict(extra="forbid")

    uri: str
    role: ArtifactRole
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    attempt: int | None = Field(default=None, description="the attempt that wrote it; inputs: none")


class CostBook(Model):
    """What the job's tenant's monthly usage holds of it (micro-USD): the reservation its admission
    made against a budget, and what its finishes have charged so far (so a manual retry's finish
    charges only what it added)."""

    model_config = ConfigDict(extra="forbid")

    reserved: int = Field(default=0, ge=0)
    charged: int = Field(default=0, ge=0)
    charged_extra: int = Field(default=0, ge=0, description="of `charged`: retries, fallbacks, more memory")
    # A job held for its budget reserves when it is released, in that month: its charges follow.
    month: str | None = Field(
        default=None, description="usage month (YYYY-MM) it is booked to; None: its created month"
    )


class Job(Model):
    """A job as the domain sees it; the store and the API have their own shapes."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    tenant: str
    job_type: str
    status: JobStatus
    parameters: dict[str, str]
    vcpus: int
    memory_mib: int
    capacity: Capacity = Field(description="capacity the next attempt asks for")
    inputs: list[str] = Field(default_factory=list)
    output_prefix: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    attempts: list[Attempt] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    idempotency_key: str | None = None
    source: str = Field(default="api", description="api or file-drop")
    # Fair share (models/scheduling.py): a job admitted before it has neither; dispatch derives them.
    share: str | None = Field(default=None, description="Batch share identifier its attempts go under")
    priority: int | None = Field(default=None, description="scheduling priority within its share")
    next_dispatch_at: UtcDatetime | None = Field(default=None, description="when a RETRY_WAIT job is due")
    held_reason: str | None = Field(
        default=None, description="why a HELD job waits, e.g. its in-flight limit"
    )
    # True: its first attempt may join an array job (a file drop of a type with `array`, or a REST
    # submission that opted in); None (not stored) for every other job.
    coalesce: bool | None = None
    version: int = 1
    cost_book: CostBook = Field(default_factory=CostBook)
    outbox: list[OwedEvent] = Field(
        default_factory=list,
        description="the alerts and job events this write of the job owes, committed with it",
    )

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.number == number:
                return attempt
        return None
