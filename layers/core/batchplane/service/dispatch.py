"""Dispatch: route one attempt, submit it to Batch under its deterministic name, record it."""

from __future__ import annotations

from batchplane.errors import InvalidRequest
from batchplane.lifecycle import transitions
from batchplane.lifecycle.outbox import owing
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import Attempt, Capacity, HistoryEntry, Job
from batchplane.models.outbox import JobEventType
from batchplane.models.pins import pins_json
from batchplane.observability import logger, metric
from batchplane.policy.admission import job_type_of
from batchplane.policy.outputs import attempt_output_prefix
from batchplane.policy.routing import Route, job_name, route
from batchplane.service.ports import BatchRefused, Ports

# The worker's contract (workers/README.md): the inputs pinned to a version or an ETag, as JSON.
INPUTS_VARIABLE = "BATCHPLANE_INPUTS"

_SUBMITTED_METRIC = {Capacity.SPOT: "AttemptsSubmittedSpot", Capacity.ON_DEMAND: "AttemptsSubmittedOnDemand"}


def queue_name(queue: str) -> str:
    """The short name of a job queue given by ARN or name."""
    return queue.rsplit("/", 1)[-1]


def route_of(ports: Ports, message: DispatchMessage) -> Route:
    # A job admitted before fair share carries no share: its tenant's, at the tenant's default priority.
    placement = ports.policy.scheduling.placement(message.tenant)
    return route(
        job_type_of(ports.policy, message.job_type),
        capacity=message.capacity,
        vcpus=message.vcpus,
        memory_mib=message.memory_mib,
        queues=ports.queues,
        definition_prefix=ports.definition_prefix,
        share=message.share or placement.share,
        priority=placement.priority.default if message.priority is None else message.priority,
    )


def dispatch(ports: Ports, message: DispatchMessage, *, receive_count: int = 1) -> None:
    """Submit the message's attempt exactly once.

    The first delivery makes one SubmitJob and one conditional write and reads nothing. A redelivery
    (or a message the sweeper sent again) first looks for a Batch job of the same name, so a
    submission whose record was lost is adopted, not repeated. When the record is refused (the job
    was cancelled, or a twin message won), the Batch job just made is terminated.
    """
    name = job_name(message.job_id, message.attempt)
    try:
        target = route_of(ports, message)
    except InvalidRequest as gone:  # the job type left the policy after the job was admitted
        _give_up(ports, message, gone.details[0].reason if gone.details else str(gone))
        return
    redelivered = receive_count > 1 or message.look_first
    batch_job_id = _earlier_submission(ports, message, target, name) if redelivered else None
    if batch_job_id is None:
        try:
            batch_job_id = _submit(ports, message, target, name)
        except BatchRefused as refused:
            _give_up(ports, message, str(refused))
            return
    _record(ports, message, target, name, batch_job_id)


def _earlier_submission(ports: Ports, message: DispatchMessage, target: Route, name: str) -> str | None:
    """The Batch job an earlier delivery submitted under this attempt's name, if any."""
    found = ports.batch.find_by_name(target.queue, name)
    if not found:
        return None
    logger.info(
        "adopting earlier submission", extra={"job_id": message.job_id, "batch_job_id": found[0].job_id}
    )
    return found[0].job_id


def _submit(ports: Ports, message: DispatchMessage, target: Route, name: str) -> str:
    """SubmitJob under the deterministic name, with what the worker and a later search need."""
    environment = {
        "BATCHPLANE_JOB_ID": message.job_id,
        "BATCHPLANE_ATTEMPT": str(message.attempt),
        # Each attempt writes under a prefix of its own (policy/outputs.py).
        "BATCHPLANE_OUTPUT_PREFIX": attempt_output_prefix(message.output_prefix, message.attempt),
    }
    if message.inputs:
        environment[INPUTS_VARIABLE] = pins_json(message.inputs)
    return ports.batch.submit(
        name=name,
        route=target,
        parameters=message.parameters,
        environment=environment,
        tags={
            "bp:job_id": message.job_id,
            "bp:attempt": str(message.attempt),
            "bp:tenant": message.tenant,
            "bp:job_type": message.job_type,
        },
    )


def _record(ports: Ports, message: DispatchMessage, target: Route, name: str, batch_job_id: str) -> None:
    """Record the submitted attempt; terminate the Batch job if the job no longer wants it."""
    now = ports.clock()
    attempt = Attempt(
        number=message.attempt,
        batch_job_id=batch_job_id,
        job_name=name,
        queue=target.queue,
        job_definition=target.job_definition,
        capacity=target.capacity,
        vcpus=target.vcpus,
        memory_mib=target.memory_mib,
        submitted_at=now,
    )
    entry = HistoryEntry(
        at=now,
        event="submitted",
        reason=(
            f"attempt {message.attempt} submitted to {queue_name(target.queue)} as {batch_job_id} "
            f"({target.capacity.value}, {target.vcpus} vCPU, {target.memory_mib} MiB)"
        ),
    )
    if ports.store.record_submission(message.job_id, message.tenant, attempt, entry):
        metric(_SUBMITTED_METRIC[target.capacity])
        return
    current = ports.store.get(message.job_id)
    recorded = current.attempt(message.attempt) if current else None
    if recorded is not None and recorded.batch_job_id == batch_job_id:
        return  # this very submission was recorded before (an adopted redelivery)
    logger.warning(
        "attempt no longer wanted; terminating its Batch job",
        extra={"job_id": message.job_id, "attempt": message.attempt, "batch_job_id": batch_job_id},
    )
    ports.batch.terminate(
        batch_job_id, f"batchplane: attempt {message.attempt} of {message.job_id} is not wanted"
    )


def _give_up(ports: Ports, message: DispatchMessage, reason: str) -> None:
    """Fail the job once with Batch's reason, owing the alert and the "Job Failed" event of a job that
    failed for good; a duplicate message finds it failed and does nothing."""
    job = ports.store.get(message.job_id)
    if job is None:
        return
    failed = transitions.dispatch_refused(job, attempt=message.attempt, reason=reason, now=ports.clock())
    if failed is None:
        return
    fail_for_good(ports, job, failed)
    logger.warning("Batch refused the attempt; job failed", extra={"job_id": job.job_id, "reason": reason})


def fail_for_good(ports: Ports, job: Job, failed: Job) -> None:
    """Save the job failed for good, owing its alert and its "Job Failed" event."""
    alert = f"job {job.job_id} failed: {failed.history[-1].reason}"
    ports.store.save(owing(failed, alert=alert, job_event=JobEventType.FAILED), previous=job)
