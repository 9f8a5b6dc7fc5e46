"""What the use cases need from the outside world: the ports as protocols, the values and errors
they speak in, and the bundle they come in. Adapters implement these and import from here; the
service layer imports no adapter."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from batchplane.models.time import utc_now

if TYPE_CHECKING:  # annotations only: a function that never touches Batch events never loads them
    from batchplane.lifecycle.bulk import Selection
    from batchplane.models.batch_event import BatchJobDetail
    from batchplane.models.dispatch import DispatchMessage
    from batchplane.models.job import Artifact, Attempt, HistoryEntry, Job, JobStatus
    from batchplane.models.policy import PolicyDocument
    from batchplane.models.progress import Progress
    from batchplane.models.sweep import SweepCursor
    from batchplane.models.waiting import QueueFront
    from batchplane.policy.cost import Pricing
    from batchplane.policy.routing import Queues, Route


# SQS's longest per-message delay: a longer backoff is kept by the sweeper (next_dispatch_at).
MAX_DISPATCH_DELAY_SECONDS = 900


@dataclass(frozen=True)
class ObjectVersion:
    """An object key and where its event stands in S3's order (the right-padded sequencer)."""

    bucket: str
    key: str
    ordering: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class StaleObject(Exception):
    """An event older than one already ingested for the same key: its content is out of date."""


class SlotFree(Exception):
    """A job to be held found its type not full and nothing held after all: it is admitted instead."""


@dataclass(frozen=True)
class Quota:
    """A tenant's count for one job type: jobs in flight (against the limit) and jobs HELD."""

    in_flight: int
    held: int


@dataclass(frozen=True)
class KeyAlreadyUsed(Exception):
    """The Idempotency-Key already made a job; the caller compares fingerprints."""

    job_id: str
    fingerprint: str


@dataclass(frozen=True)
class Page:
    """One page of a tenant's jobs and the opaque token of the next."""

    jobs: list[Job]
    next_token: str | None


@dataclass(frozen=True)
class ArtifactPage:
    """One page of a job's recorded artifacts (each with its attempt), and the token of the next."""

    artifacts: list[Artifact]
    next_token: str | None


@dataclass(frozen=True)
class ArtifactUse:
    """One job's attempt that read (input) or wrote (output) an object: lineage."""

    job_id: str
    attempt: int  # 0: an input, read by every attempt
    artifact: Artifact


@dataclass(frozen=True)
class UsePage:
    uses: list[ArtifactUse]
    next_token: str | None


@dataclass(frozen=True)
class BatchJobRef:
    """A Batch job found by name: its id and Batch's status."""

    job_id: str
    status: str


@dataclass(frozen=True)
class UnfinishedChunk:
    """Unfinished jobs of one by_activity shard, up to a DescribeJobs call's worth, and where the shard
    goes on after them (an opaque token of the store; None: the shard has no more)."""

    jobs: list[Job]
    resume: str | None


@dataclass(frozen=True)
class BudgetHold:
    """A reservation against the tenant's monthly budget, made in the job's creating write: it holds
    only while the month's committed spend stays within `room` (the budget less this reservation)."""

    month: str
    amount: int  # micro-USD
    room: int
    alert: bool = False  # this write also marks the month's threshold alert as raised (once a month)


class BudgetFull(Exception):
    """The month's usage no longer has room for the reservation (or its alert was raised meanwhile)."""


@dataclass(frozen=True)
class UsageLine:
    """A month's finished jobs of one job type and outcome, and their cost (micro-USD)."""

    job_type: str
    outcome: str
    jobs: int
    cost: int
    extra: int  # of `cost`: what retries and fallbacks added


@dataclass(frozen=True)
class UsageMonth:
    month: str
    spent: int  # finished jobs' cost, micro-USD
    reserved: int  # unfinished jobs' budget reservations
    alerted: bool
    lines: list[UsageLine]

    @property
    def committed(self) -> int:
        return self.spent + self.reserved


class BatchRefused(Exception):
    """Batch refused the request itself (queue, definition): trying again won't help."""


@dataclass(frozen=True)
class LogLine:
    """One line of an attempt's log, as the log service stored it."""

    at: datetime
    message: str


@dataclass(frozen=True)
class LogPage:
    """Lines of one log stream, oldest first; the token that reads on after them; and whether the
    stream held nothing more when read (a running job's stream may still grow)."""

    lines: list[LogLine]
    next_token: str
    at_end: bool


class LogNotFound(Exception):
    """The log stream does not exist (not written yet, or expired)."""


class JobLogs(Protocol):
    """Where Batch jobs' logs are (CloudWatch Logs, awslogs' log group) and reading them."""

    def where(self, stream: str) -> str: ...
    def read(self, stream: str, *, limit: int, next_token: str | None = None) -> LogPage: ...


class SweepBook(Protocol):
    """What the sweeper keeps between its runs: where an unfinished sweep goes on, and each job
    queue's front as it last took it (GET /jobs/{job_id} reads that for a waiting job)."""

    def sweep_cursor(self) -> SweepCursor | None: ...
    def keep_sweep_cursor(self, cursor: SweepCursor | None) -> None: ...
    def queue_front(self, queue: str) -> QueueFront | None: ...
    def keep_queue_front(self, front: QueueFront) -> None: ...


class JobStore(Protocol):
    def create(
        self,
        job: Job,
        *,
        fingerprint: str,
        in_flight_limit: int,
        latest_object: ObjectVersion | None = None,
        budget: BudgetHold | None = None,
        over_budget: bool = False,
    ) -> None: ...
    def usage(self, tenant: str, first: str, last: str) -> list[UsageMonth]: ...
    def get(self, job_id: str, *, consistent: bool = True) -> Job | None: ...
    def list_for_tenant(
        self,
        tenant: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        job_type: str | None = None,
        next_token: str | None = None,
    ) -> Page: ...
    def list_active(
        self,
        *,
        limit: int,
        status: JobStatus | None = None,
        job_type: str | None = None,
        next_token: str | None = None,
    ) -> Page: ...
    def created_between(
        self, tenant: str | None, since: datetime, until: datetime, *, most: int
    ) -> tuple[list[Job], bool]: ...
    def save(
        self,
        job: Job,
        *,
        previous: Job,
        in_flight_limit: int | None = None,
        budget: BudgetHold | None = None,
    ) -> Job: ...
    def record_submission(self, job_id: str, tenant: str, attempt: Attempt, entry: HistoryEntry) -> bool: ...
    def record_progress(self, job_id: str, tenant: str, progress: Progress) -> bool: ...
    def activity_shards(self) -> int: ...
    def unfinished(self, shard: int, *, after: str | None = None) -> Iterator[UnfinishedChunk]: ...
    def quota(self, tenant: str, job_type: str) -> Quota: ...
    def oldest_held(self, tenant: str, job_type: str, limit: int) -> list[str]: ...
    def record_artifacts(self, job_id: str, tenant: str, artifacts: list[Artifact], at: datetime) -> None: ...
    def artifacts(self, job_id: str, *, limit: int, next_token: str | None = None) -> ArtifactPage: ...
    def artifact_uses(
        self, tenant: str, uri: str, *, limit: int, next_token: str | None = None
    ) -> UsePage: ...


@dataclass(frozen=True)
class OperationPage:
    """One page of a bulk operation (service/bulk.py) as recorded under its Idempotency-Key: the jobs
    it takes (its plan, written before any is changed), where the next page starts, and once done
    what became of each job."""

    number: int
    fingerprint: str  # of the operation's request: its action, filter and page size
    as_of: datetime
    job_ids: list[str]
    next_position: str | None
    outcomes: list[str] | None = None  # what became of each of job_ids, in order


class Operations(Protocol):
    def select(self, tenant: str, selection: Selection, *, limit: int, position: str | None) -> Page:
        """Up to `limit` of the tenant's jobs that `selection` takes, oldest first, from `position`."""
        ...

    def page(self, tenant: str, key: str, number: int) -> OperationPage | None: ...
    def plan(self, tenant: str, key: str, page: OperationPage) -> OperationPage:
        """Record the page unless it is recorded already; the recorded one."""
        ...

    def finish(self, tenant: str, key: str, page: OperationPage) -> None: ...


class Dispatcher(Protocol):
    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None: ...
    def send_all(self, messages: Sequence[DispatchMessage], delay_seconds: int = 0) -> None:
        """Several messages, up to ten a request; raises when any was not sent (the caller retries
        them all: a copy sent twice is a duplicate delivery, which every reader tolerates)."""
        ...


class Batch(Protocol):
    def submit(
        self,
        *,
        name: str,
        route: Route,
        parameters: dict[str, str],
        environment: dict[str, str],
        tags: dict[str, str],
        array_size: int | None = None,
    ) -> str: ...
    def find_by_name(self, queue: str, name: str) -> list[BatchJobRef]: ...
    def terminate(self, batch_job_id: str, reason: str) -> None: ...
    def describe(self, batch_job_ids: list[str]) -> list[BatchJobDetail]: ...
    def front_of_queue(self, queue: str) -> QueueFront | None: ...


@dataclass(frozen=True)
class ArrayMember:
    """The job attempt at one index of an array job (service/coalesce.py)."""

    array_name: str
    index: int
    job_id: str
    attempt: int


@dataclass(frozen=True)
class ArrayMeta:
    """An array job as the coalescer made it: what its children share, and its parent once known."""

    name: str
    tenant: str
    job_type: str
    queue: str
    job_definition: str
    capacity: str
    vcpus: int
    memory_mib: int
    size: int
    manifest_uri: str
    created_at: datetime
    # What a resumed submission needs beyond the above: the children share the parent's parameters.
    share: str
    priority: int
    parameters: dict[str, str]
    parent_job_id: str | None = None
    refused: str | None = None  # Batch refused the array itself: closed, its jobs failed, never resubmitted


@dataclass(frozen=True)
class Claim:
    """What a claim of a job's attempt for an array found: the array holds it (`ours`, claimed now or
    by an earlier delivery), another array that holds it (`other`), or neither: the job moved on (a
    hole at that index)."""

    ours: bool
    other: str | None = None
    before: bool = False  # ours since an earlier delivery: Batch may hold the array already


class ArrayBook(Protocol):
    """Array jobs' records (meta and immutable parts) and the claims of their members' attempts."""

    def member(self, array_name: str, index: int) -> ArrayMember | None: ...
    def parent_of(self, array_name: str) -> str | None: ...
    def meta(self, array_name: str) -> ArrayMeta | None: ...
    def members(self, array_name: str, size: int) -> list[ArrayMember]: ...
    def write(self, meta: ArrayMeta, keys: list[str]) -> None:
        """The parts (member keys in index order) and the meta; the same content on every delivery."""
        ...

    def claim(self, job_id: str, attempt: Attempt, entry: HistoryEntry) -> Claim:
        """The job's attempt recorded as the array's child (attempt.array_name, array_index), if the
        job still waits for exactly that attempt and no array holds it: one conditional write."""
        ...

    def hold_submission(self, array_name: str, now: datetime, until: datetime) -> bool:
        """The array's SubmitJob taken by this invocation until `until`, unless its parent is recorded
        or another invocation holds it (till a time after `now`); True when taken."""
        ...

    def record_parent(self, array_name: str, parent_job_id: str) -> bool:
        """Record the parent unless one is recorded already; True when this call recorded it."""
        ...

    def close(self, array_name: str, reason: str) -> bool:
        """Batch refused the array: no invocation holds or submits it again. False when it was closed
        already or has a parent recorded (which stays)."""
        ...


class Manifests(Protocol):
    def write(self, array_name: str, text: str) -> str:
        """The array's manifest stored (the same bytes on every delivery); its s3:// URI."""
        ...


class Notify(Protocol):
    """Publishes an owed event (models/outbox.py); `event_id` goes with it, the same on every delivery."""

    def alert(self, subject: str, job: Job, *, event_id: str) -> None: ...
    def job_event(self, detail_type: str, job: Job, *, event_id: str) -> None: ...


def new_job_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Ports:
    store: JobStore
    dispatch: Dispatcher
    batch: Batch
    policy: PolicyDocument
    queues: Queues
    notify: Notify
    operations: Operations
    arrays: ArrayBook
    manifests: Manifests
    sweeps: SweepBook
    artifact_bucket: str
    ingest_bucket: str = ""
    definition_prefix: str = ""
    stale_after: timedelta = timedelta(minutes=10)
    clock: Callable[[], datetime] = utc_now
    new_id: Callable[[], str] = field(default=new_job_id)
    rng: random.Random = field(default_factory=random.Random)
    pricing: Pricing | None = None  # the policy's prices in this region; None: service/costs.py picks
