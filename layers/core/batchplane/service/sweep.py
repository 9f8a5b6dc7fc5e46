"""The sweeper: repairs what lost or late events left behind, on a schedule.

Jobs quiet for longer than `stale_after` are checked against Batch (DescribeJobs, 100 ids a call)
and the missing transitions go through the same code as events; an attempt recorded without its
Batch job id is found by its deterministic name; QUEUED jobs whose dispatch message was lost and
RETRY_WAIT jobs that are due are dispatched again (the dispatcher's guards make a repeat harmless);
an attempt stuck in RUNNABLE past its job type's limit raises one alert (owed by the write that marks
it, and published from the table's stream like every alert); a tenant's HELD jobs quiet that long are
released into its free slots (service/held.py), in case the release their slot owed was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from batchplane.lifecycle.attempts import note_stuck_runnable
from batchplane.lifecycle.outbox import owing
from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import DISPATCHABLE_STATUSES, IN_BATCH_STATUSES, AttemptStatus, Job, JobStatus
from batchplane.observability import logger, metric
from batchplane.service.held import release_held
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS, Ports
from batchplane.service.state_change import AttemptNotRecordedYet, handle_state_change


@dataclass
class SweepReport:
    checked: int = 0
    redispatched: list[str] = field(default_factory=list)
    reconciled: dict[str, str] = field(default_factory=dict)
    adopted: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


def sweep(ports: Ports) -> SweepReport:
    now = ports.clock()
    report = SweepReport()
    stale = ports.store.stale_jobs(now - ports.stale_after)
    report.checked = len(stale)
    in_batch: dict[str, Job] = {}
    held: set[tuple[str, str]] = set()
    for job in stale:
        if job.status is JobStatus.HELD:
            held.add((job.tenant, job.job_type))
            continue
        if job.status in (JobStatus.QUEUED, JobStatus.RETRY_WAIT):
            _redispatch(ports, job, now, report)
            continue
        attempt = job.current_attempt
        if job.status not in IN_BATCH_STATUSES or attempt is None:
            continue
        batch_job_id = attempt.batch_job_id
        if batch_job_id is None:
            found = ports.batch.find_by_name(attempt.queue, attempt.job_name)
            if found:
                batch_job_id = found[0].job_id
                report.adopted.append(job.job_id)
        if batch_job_id is not None:
            in_batch[batch_job_id] = job
    described = {d.job_id: d for d in ports.batch.describe(list(in_batch))} if in_batch else {}
    for batch_job_id, job in in_batch.items():
        detail = described.get(batch_job_id) or _vanished(job, batch_job_id, report)
        if _nothing_new(job, detail):
            report.reconciled[job.job_id] = "unchanged"
        else:
            try:
                handled = handle_state_change(ports, detail)
            except AttemptNotRecordedYet:
                continue
            report.reconciled[job.job_id] = handled.outcome.value
        if detail.status == AttemptStatus.RUNNABLE.value:
            _check_runnable(ports, job, now, report)
    for tenant, job_type in sorted(held):
        report.released.extend(job.job_id for job in release_held(ports, tenant, job_type))
    logger.info("sweep done", extra={"report": report.__dict__})
    return report


def _nothing_new(job: Job, detail: BatchJobDetail) -> bool:
    """Batch says what the job already records: no write at all (a conditional write that fails
    is billed too, and a quiet running job is looked at on every sweep)."""
    attempt = job.current_attempt
    return (
        attempt is not None
        and attempt.batch_job_id == detail.job_id
        and attempt.status.value == detail.status
        and not attempt.status.is_terminal
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
        }
    )


def _check_runnable(ports: Ports, job: Job, now: datetime, report: SweepReport) -> None:
    job_type = ports.policy.job_types.get(job.job_type)
    current = ports.store.get(job.job_id)
    if job_type is None or current is None or current.current_attempt is None:
        return
    since = current.current_attempt.runnable_at or current.current_attempt.submitted_at
    waited = int((now - since).total_seconds())
    if waited < job_type.runnable_alert_after_seconds:
        return
    marked = note_stuck_runnable(current, waited, now)
    if marked is None:
        return  # alerted once already
    ports.store.save(
        owing(marked, alert=f"job {job.job_id} stuck in RUNNABLE for {waited} s"), previous=current
    )
    report.stuck.append(job.job_id)
    metric("StuckRunnable", job_type=job.job_type)
