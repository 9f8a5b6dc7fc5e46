"""The sweeper: repairs what lost or late events left behind, on a schedule, and counts the jobs.

A sweep reads every unfinished job, every shard of the by_activity index, page by page, a chunk of 100
at a time (one BatchGetItem, one DescribeJobs), holding no more than a page of index entries and a
chunk of jobs however many there are. Jobs quiet for longer than `stale_after` are checked against
Batch and the missing transitions go through the same code as events; an attempt recorded without its
Batch job id is found by its deterministic name (an array child's by its parent's id and its index;
one of an array with no parent recorded is sent to be resumed); QUEUED jobs whose dispatch message was
lost and RETRY_WAIT jobs that are due are dispatched again (the dispatcher's guards make a repeat
harmless); an attempt that waits in vain is ended, and one stuck in RUNNABLE or STARTING past its job
type's limit raises one alert (service/stuck.py; owed by the write that marks it, and published from
the table's stream like every alert); a tenant's HELD jobs quiet that long are released into its free
slots (service/held.py), in case the release their slot owed was lost. A quiet job costs reads only,
no write.

An invocation that runs short of time stops after a whole chunk and keeps a cursor (models/sweep.py);
the next scheduled invocation goes on from there, so each job is looked at once a sweep, never
skipped and never twice. One invocation at a time (reserved concurrency 1) keeps the sweep's Batch
calls, which share the account's request rate with SubmitJob, to one paced stream. Once a sweep has
read every shard it records the unfinished jobs by state (and job type) as metrics.

Each run also keeps the front of each job queue (GetJobQueueSnapshot: its first 100 RUNNABLE jobs),
which `GET /jobs/{job_id}` reads to place a waiting job: two Batch calls a run, whatever reads it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import DISPATCHABLE_STATUSES, IN_BATCH_STATUSES, Job, JobStatus
from batchplane.models.sweep import SweepCursor
from batchplane.observability import MetricUnit, logger, metric
from batchplane.policy.routing import child_job_id
from batchplane.service.held import release_held
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS, Ports
from batchplane.service.state_change import AttemptNotRecordedYet, Outcome, handle_state_change
from batchplane.service.stuck import Waiting, check_waiting

UNFINISHED_STATUSES = [status for status in JobStatus if not status.is_terminal]


@dataclass
class SweepReport:
    checked: int = 0  # quiet jobs looked at
    unfinished: int = 0  # unfinished jobs read by this invocation, quiet or not
    redispatched: list[str] = field(default_factory=list)
    reconciled: dict[str, str] = field(default_factory=dict)
    adopted: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    ended_waits: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    # (tenant, job type) with quiet HELD jobs: released once at the end of the invocation
    held: set[tuple[str, str]] = field(default_factory=set)
    complete: bool = True  # False: out of time, the next invocation goes on from the cursor
    by_state: dict[str, int] = field(default_factory=dict)  # a complete sweep's count, every invocation

    def summary(self) -> dict[str, object]:
        """What a log line holds: counts, and the ids of the jobs something was done to (not of the
        jobs found unchanged: a sweep of 100,000 would log them all)."""
        outcomes = Counter(self.reconciled.values())
        return {
            "checked": self.checked,
            "unfinished": self.unfinished,
            "complete": self.complete,
            "by_state": self.by_state,
            "reconciled": dict(outcomes),
            "changed": [job_id for job_id, outcome in self.reconciled.items() if outcome != "unchanged"][
                :100
            ],
            "redispatched": self.redispatched[:100],
            "adopted": self.adopted[:100],
            "vanished": self.vanished[:100],
            "stuck": self.stuck[:100],
            "ended_waits": self.ended_waits[:100],
            "released": self.released[:100],
        }


def sweep(ports: Ports, *, has_time: Callable[[], bool] = lambda: True) -> SweepReport:
    """One invocation of the sweep: from where the last one stopped (or the start) until every shard
    is read, or `has_time` says to stop (checked after each chunk)."""
    now = ports.clock()
    report = SweepReport()
    kept = ports.sweeps.sweep_cursor()
    cursor = (
        kept.model_copy(update={"invocations": kept.invocations + 1})
        if kept is not None
        else SweepCursor(started_at=now)
    )
    _keep_queue_fronts(ports)
    shards = ports.store.activity_shards()
    for shard in range(shards):
        if shard in cursor.done:
            continue
        if not _sweep_shard(ports, shard, cursor=cursor, now=now, report=report, has_time=has_time):
            break
    for tenant, job_type in sorted(report.held):
        report.released.extend(job.job_id for job in release_held(ports, tenant, job_type))
    if len(cursor.done) < shards:
        report.complete = False
        ports.sweeps.keep_sweep_cursor(cursor)
        metric("SweepContinued")
    else:
        if kept is not None:
            ports.sweeps.keep_sweep_cursor(None)
        report.by_state = _record_counts(ports, cursor)
    logger.info("sweep done", extra={"report": report.summary(), "invocations": cursor.invocations})
    return report


def _sweep_shard(
    ports: Ports,
    shard: int,
    *,
    cursor: SweepCursor,
    now: datetime,
    report: SweepReport,
    has_time: Callable[[], bool],
) -> bool:
    """Read a shard on from the cursor; True when it was read to its end, False when time ran out."""
    quiet_since = now - ports.stale_after
    counts = Counter(cursor.counts)
    try:
        for chunk in ports.store.unfinished(shard, after=cursor.resume.get(shard)):
            report.unfinished += len(chunk.jobs)
            counts.update(_count_key(job.status.value, job.job_type) for job in chunk.jobs)
            sweep_jobs(ports, [job for job in chunk.jobs if job.updated_at < quiet_since], now, report)
            if chunk.resume is None:
                break
            cursor.resume[shard] = chunk.resume
            if not has_time():
                return False
        cursor.resume.pop(shard, None)
        cursor.done.append(shard)
        return True
    finally:
        cursor.counts = dict(counts)


def sweep_jobs(ports: Ports, quiet: list[Job], now: datetime, report: SweepReport) -> None:
    """Quiet jobs (up to DescribeJobs' 100): dispatch again what waits for a lost message, ask Batch
    about the rest in one call, and handle each job with what Batch says (`sweep_job`)."""
    report.checked += len(quiet)
    in_batch: dict[str, Job] = {}
    for job in quiet:
        if job.status is JobStatus.HELD:
            report.held.add((job.tenant, job.job_type))
            continue
        if job.status in DISPATCHABLE_STATUSES:
            _redispatch(ports, job, now, report)
            continue
        attempt = job.current_attempt
        if job.status not in IN_BATCH_STATUSES or attempt is None:
            continue
        batch_job_id = attempt.batch_job_id
        if batch_job_id is None and attempt.array_name is not None:
            batch_job_id = _claimed_child(ports, job, report)
        elif batch_job_id is None:
            found = ports.batch.find_by_name(attempt.queue, attempt.job_name)
            if found:
                batch_job_id = found[0].job_id
                report.adopted.append(job.job_id)
        if batch_job_id is not None:
            in_batch[batch_job_id] = job
    described = {d.job_id: d for d in ports.batch.describe(list(in_batch))} if in_batch else {}
    for batch_job_id, job in in_batch.items():
        detail = described.get(batch_job_id) or _vanished(job, batch_job_id, report)
        sweep_job(ports, job, detail, now, report)


def sweep_job(ports: Ports, job: Job, detail: BatchJobDetail, now: datetime, report: SweepReport) -> None:
    """One quiet job in Batch's hands, with what Batch says of it now: the per-job checks."""
    if _nothing_new(job, detail):
        report.reconciled[job.job_id] = "unchanged"
    else:
        try:
            handled = handle_state_change(ports, detail)
        except AttemptNotRecordedYet:
            return
        report.reconciled[job.job_id] = handled.outcome.value
        if handled.outcome not in (Outcome.PROGRESSED, Outcome.STALE):
            return  # decided (or ignored) already: nothing waits
    waiting = check_waiting(ports, job, detail, now)
    if waiting is Waiting.ENDED:
        report.ended_waits.append(job.job_id)
    elif waiting is Waiting.STUCK:
        report.stuck.append(job.job_id)


def _count_key(status: str, job_type: str) -> str:
    return f"{status}|{job_type}"


def _record_counts(ports: Ports, cursor: SweepCursor) -> dict[str, int]:
    """A complete sweep's count of unfinished jobs, as gauges: one per state, and one per state and
    job type (zeros too, so a state that emptied shows 0, not a gap). No tenant dimension: each
    dimension value is a metric of its own, billed monthly (tenants x states x job types)."""
    by_state: Counter[str] = Counter()
    job_types = set(ports.policy.job_types)
    for key, count in cursor.counts.items():
        status, job_type = key.split("|", 1)
        by_state[status] += count
        job_types.add(job_type)
    for status in UNFINISHED_STATUSES:
        metric("JobsInState", by_state[status.value], state=status.value)
        for job_type in sorted(job_types):
            count = cursor.counts.get(_count_key(status.value, job_type), 0)
            metric("JobsInState", count, state=status.value, job_type=job_type)
    metric("SweepDuration", (ports.clock() - cursor.started_at).total_seconds(), MetricUnit.Seconds)
    metric("SweepInvocations", cursor.invocations)
    return {status.value: by_state[status.value] for status in UNFINISHED_STATUSES}


def _keep_queue_fronts(ports: Ports) -> None:
    """Each job queue's first RUNNABLE jobs, kept for GET /jobs/{job_id} (Batch updates its snapshot
    itself every few seconds; a sweep's worth of age is what a waiting job's position may have)."""
    for queue in (ports.queues.spot, ports.queues.on_demand):
        front = ports.batch.front_of_queue(queue)
        if front is not None:
            ports.sweeps.keep_queue_front(front)


def _nothing_new(job: Job, detail: BatchJobDetail) -> bool:
    """Batch says what the job already records: no write at all (a conditional write that fails
    is billed too, and a quiet running job is looked at on every sweep)."""
    attempt = job.current_attempt
    return (
        attempt is not None
        and attempt.batch_job_id == detail.job_id
        and attempt.status.value == detail.status
        and not attempt.status.is_terminal
        # a new reason for a RUNNABLE wait is news (recorded on the attempt)
        and (
            detail.status != "RUNNABLE"
            or not detail.status_reason
            or detail.status_reason == attempt.status_reason
        )
    )


def _redispatch(ports: Ports, job: Job, now: datetime, report: SweepReport) -> None:
    due = job.next_dispatch_at or now
    delay = max(0, int((due - now).total_seconds()))
    if delay > MAX_DISPATCH_DELAY_SECONDS:
        return  # not due yet; a later sweep sends it
    # What the index led to was read eventually consistent: read the job as it is now, so a job
    # cancelled or dispatched meanwhile is not submitted again (and then terminated).
    whole = ports.store.get(job.job_id)
    if whole is None or whole.status not in DISPATCHABLE_STATUSES:
        return  # it moved on since the index was read
    ports.dispatch.send(DispatchMessage.next_attempt_of(whole, look_first=True), delay)
    report.redispatched.append(job.job_id)


def _claimed_child(ports: Ports, job: Job, report: SweepReport) -> str | None:
    """The child id of a quiet attempt claimed by an array (service/coalesce.py), when its parent is
    recorded. When it is not, the coalescer died before it submitted or recorded the array: the
    attempt's message goes out again with look_first, and the coalescer that receives it resumes the
    array from its items (adopting what Batch accepted, else submitting it); None meanwhile."""
    attempt = job.current_attempt
    assert attempt is not None
    assert attempt.array_name is not None
    assert attempt.array_index is not None
    parent = ports.arrays.parent_of(attempt.array_name)
    if parent is not None:
        return child_job_id(parent, attempt.array_index)
    # Read as it is now (the index led to an eventually consistent copy): named or moved on meanwhile?
    whole = ports.store.get(job.job_id)
    current = whole.current_attempt if whole is not None else None
    if whole is None or whole.status not in IN_BATCH_STATUSES or current != attempt:
        return None
    ports.dispatch.send(DispatchMessage.of_attempt(whole, attempt.number, look_first=True))
    report.redispatched.append(job.job_id)
    return None


def _vanished(job: Job, batch_job_id: str, report: SweepReport) -> BatchJobDetail:
    """Batch no longer knows the job (it keeps finished jobs for about a week): the attempt is lost."""
    report.vanished.append(job.job_id)
    attempt = job.current_attempt
    assert attempt is not None
    return BatchJobDetail.model_validate(
        {
            "jobId": batch_job_id,
            "jobName": attempt.job_name,
            "jobQueue": attempt.queue,
            "status": "FAILED",
            "statusReason": f"batchplane: Batch no longer knows job {batch_job_id}",
            "tags": {"bp:tenant": job.tenant},
            # an array child's event names its index: by it the attempt is found
            **({"arrayProperties": {"index": attempt.array_index}} if attempt.array_name is not None else {}),
        }
    )
