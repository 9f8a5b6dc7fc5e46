"""The flows the harness faults: each brings a fresh world to just before its trigger (setup, never
faulted), then delivers the trigger as AWS would (act: the calls it makes are the flow's call sites).

A job is told apart across runs by its request: the tenant and the input it was made for. Every case
has a tag of its own, so its tenant, Idempotency-Key and object keys are new.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from moto.batch.models import batch_backends

from batchplane.models.job import Attempt, Capacity, HistoryEntry
from tests.faults.world import World
from tests.support import INGEST_BUCKET, batch_event, load_event, s3_notification

ACCOUNT = "123456789012"
REGION = "us-east-1"

Context = dict[str, Any]


@dataclass(frozen=True)
class Flow:
    name: str
    what: str
    setup: Callable[[World, str], Context]
    act: Callable[[World, Context], object]
    scheduled: bool = False  # the trigger is the sweeper's schedule: the next sweep is its redelivery


def tenant_of(tag: str) -> str:
    return f"fault-{tag}"


def input_of(tag: str) -> str:
    """An object in the tenant's own input area (the policy's default sources)."""
    return f"s3://{INGEST_BUCKET}/incoming/{tenant_of(tag)}/{tag}.csv"


# -- what the outside world does -------------------------------------------------------------------


def submit(world: World, tenant: str, uri: str, *, key: str) -> str:
    status, job = world.call_api(
        "POST",
        "/jobs",
        tenant=tenant,
        body={"job_type": "sort-large", "parameters": {"input": uri}},
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    assert status == 202, (status, job)
    return str(job["job_id"])


def drop(world: World, key: str, *, version: str) -> None:
    """S3 notifies the ingest queue of an object created under incoming/."""
    notification = s3_notification(
        "object_created", bucket=world.aws.env["INGEST_BUCKET"], key=key, versionId=version
    )
    world.sqs.send_message(QueueUrl=world.refs["IngestQueue"], MessageBody=json.dumps(notification))


def batch_state(world: World, fixture: str, job_id: str) -> bool:
    """Batch's state change of the job's current attempt, through the EventBridge rule."""
    job = world.store.get(job_id)
    assert job is not None, job_id
    return world.invoke_async("state_change", batch_event(fixture, job=job), "StateChangeDLQ")


def output_created(world: World, job_id: str, attempt: int, name: str) -> bool:
    """S3's "Object Created" of an attempt's output, through the artifacts function's rule."""
    job = world.store.get(job_id)
    assert job is not None, job_id
    bucket, prefix = job.output_prefix.removeprefix("s3://").split("/", 1)
    event = load_event("s3/eventbridge_output_created.json")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=f"{prefix}attempt-{attempt}/{name}", **{"version-id": "v1"})
    return world.invoke_async("artifacts", event, "OutputsDLQ")


# -- the worlds just before a trigger ---------------------------------------------------------------


def queued(world: World, tag: str) -> Context:
    """A job accepted over REST; its dispatch message is on the queue."""
    job_id = submit(world, tenant_of(tag), input_of(tag), key=f"key-{tag}")
    return {"job_id": job_id, "tenant": tenant_of(tag)}


def submitted(world: World, tag: str) -> Context:
    context = queued(world, tag)
    world.pump()
    return context


def running(world: World, tag: str) -> Context:
    context = submitted(world, tag)
    batch_state(world, "running", context["job_id"])
    world.pump()
    return context


def failed(world: World, tag: str) -> Context:
    context = running(world, tag)
    batch_state(world, "application_error", context["job_id"])  # sort-large retries none
    world.pump()
    return context


def message_lost(world: World, tag: str) -> Context:
    """A QUEUED job whose dispatch message was lost."""
    context = queued(world, tag)
    world.lose_messages("DispatchQueue")
    return context


def sent_again(world: World, tag: str) -> Context:
    """A lost message the sweeper sent again (look first)."""
    context = message_lost(world, tag)
    world.sweep()
    return context


def submitted_unrecorded(world: World, tag: str) -> Context:
    """An attempt Batch accepted whose record was lost, and its message sent again by the sweeper."""
    context = message_lost(world, tag)
    job_id = context["job_id"]
    world.batch.submit_job(
        jobName=f"bp-{job_id}-1",
        jobQueue=world.aws.env["SPOT_JOB_QUEUE"],
        jobDefinition="batchplane-test-sort-large",
    )
    world.sweep()
    return context


def vanished(world: World, tag: str) -> Context:
    """A submitted attempt whose Batch job Batch no longer knows (it keeps finished ones a week)."""
    context = submitted(world, tag)
    job = world.store.get(context["job_id"])
    assert job is not None and job.current_attempt is not None
    backend = batch_backends[ACCOUNT][REGION]
    world.forgotten.add(job.current_attempt.batch_job_id)
    gone = backend._jobs.pop(job.current_attempt.batch_job_id)
    for queue in backend._job_queues.values():
        if gone in queue.jobs:
            queue.jobs.remove(gone)
    return context


def stuck(world: World, tag: str) -> Context:
    """An attempt Batch holds in RUNNABLE for longer than sort-large's alert threshold (1800 s)."""
    context = waiting(world, tag)
    batch_state(world, "runnable", context["job_id"])
    world.pump()
    world.offset += timedelta(seconds=1801)  # a sweep later, it has waited longer than that
    return context


def waiting(world: World, tag: str) -> Context:
    """An attempt Batch holds in RUNNABLE (on Spot)."""
    context = submitted(world, tag)
    job = world.store.get(context["job_id"])
    assert job is not None and job.current_attempt is not None
    batch_backends[ACCOUNT][REGION]._jobs[job.current_attempt.batch_job_id].status = "RUNNABLE"
    return context


def starved(world: World, tag: str) -> Context:
    """A Spot attempt not started for longer than sort-large's capacity wait (7200 s)."""
    context = waiting(world, tag)
    batch_state(world, "runnable", context["job_id"])
    world.pump()
    world.offset += timedelta(seconds=7201)
    return context


def decided_unpublished(world: World, tag: str) -> Context:
    """A job reclaimed on Spot, failed for good on demand: the give-up's write is on the stream."""
    context = running(world, tag)
    batch_state(world, "spot_interrupted", context["job_id"])
    world.pump()
    batch_state(world, "running", context["job_id"])
    batch_state(world, "application_error", context["job_id"])
    return context


def array_child(world: World, tag: str) -> Context:
    """A job the coalescer took into a submitted array (child 0 of `<tag>-parent`), as it leaves
    it: its message consumed, the array's part and meta (with the parent) written, its attempt claimed."""
    context = message_lost(world, tag)
    job_id = context["job_id"]
    name = "bp-array-" + hashlib.sha256(f"{job_id}#1".encode()).hexdigest()[:24]
    for sk, attributes in (
        ("PART#00000", {"members": {"L": [{"S": f"{job_id}#1"}]}}),
        ("ARRAY", {"tenant": {"S": context["tenant"]}, "parent_job_id": {"S": f"{tag}-parent"}}),
    ):
        world.aws.client("dynamodb").put_item(
            TableName=world.aws.env["JOBS_TABLE_NAME"],
            Item={"pk": {"S": f"ARRAY#{name}"}, "sk": {"S": sk}, **attributes},
        )
    now = world.store.get(job_id).created_at  # type: ignore[union-attr]
    claim = Attempt(
        number=1,
        job_name=name,
        queue=world.aws.env["SPOT_JOB_QUEUE"],
        job_definition="batchplane-test-sort-large",
        capacity=Capacity.SPOT,
        vcpus=1,
        memory_mib=256,
        submitted_at=now,
        array_name=name,
        array_index=0,
    )
    entry = HistoryEntry(at=now, event="submitted", reason=f"attempt 1 claimed by {name}")
    assert world.store.record_submission(job_id, context["tenant"], claim, entry)
    return {**context, "array": name, "child": f"{tag}-parent:0"}


def child_state(fixture: str) -> Callable[[World, Context], object]:
    """Batch's state change of the array child, through the EventBridge rule."""

    def act(world: World, context: Context) -> object:
        event = load_event(f"batch/{fixture}.json")
        event["detail"].update(
            jobId=context["child"],
            jobName=context["array"],
            jobQueue=world.aws.env["SPOT_JOB_QUEUE"],
            arrayProperties={"index": 0},
            tags={"bp:tenant": context["tenant"], "bp:job_type": "sort-large"},
        )
        return world.invoke_async("state_change", event, "StateChangeDLQ")

    return act


# -- the triggers ---------------------------------------------------------------------------------------


def post_job(world: World, tag: str) -> Context:
    return {"tenant": tenant_of(tag), "uri": input_of(tag), "key": f"key-{tag}"}


def send_post(world: World, context: Context) -> object:
    return world.call_api(
        "POST",
        "/jobs",
        tenant=context["tenant"],
        body={"job_type": "sort-large", "parameters": {"input": context["uri"]}},
        headers={"Content-Type": "application/json", "Idempotency-Key": context["key"]},
    )


def dropped(world: World, tag: str) -> Context:
    drop(world, f"incoming/{tenant_of(tag)}/sort/{tag}.csv", version=f"v-{tag}")
    return {}


def state(fixture: str) -> Callable[[World, Context], object]:
    def deliver(world: World, context: Context) -> object:
        return batch_state(world, fixture, context["job_id"])

    return deliver


def by_hand(action: str) -> Callable[[World, Context], object]:
    def request(world: World, context: Context) -> object:
        return world.call_api(
            "POST",
            f"/jobs/{context['job_id']}/{action}",
            tenant=context["tenant"],
            resource=f"/jobs/{{job_id}}/{action}",
        )

    return request


def in_bulk(action: str) -> Callable[[World, Context], object]:
    """A bulk operation of the tenant's (its one job), under an Idempotency-Key as the CLI sends it."""

    def request(world: World, context: Context) -> object:
        return world.call_api(
            "POST",
            f"/bulk/{action}",
            tenant=context["tenant"],
            body={"filter": {}},
            headers={"Content-Type": "application/json", "Idempotency-Key": f"bulk-{context['job_id']}"},
        )

    return request


def dispatch(world: World, _: Context) -> object:
    return world.pump_queue("DispatchQueue", "dispatcher")


def ingest(world: World, _: Context) -> object:
    return world.pump_queue("IngestQueue", "file_drop")


def sweep(world: World, _: Context) -> object:
    return world.sweep()


def deliver_outbox(world: World, _: Context) -> object:
    return world.drain_outbox()


def output(world: World, context: Context) -> object:
    return output_created(world, context["job_id"], 1, "sorted.csv")


FLOWS = [
    Flow("rest_submit", "POST /jobs with an Idempotency-Key", post_job, send_post),
    Flow("file_drop", "S3 notification on the ingest queue", dropped, ingest),
    Flow("dispatch", "a first dispatch message", queued, dispatch),
    Flow("dispatch_look_first", "a message the sweeper sent again", sent_again, dispatch),
    Flow(
        "dispatch_adopt", "a message sent again for an unrecorded submission", submitted_unrecorded, dispatch
    ),
    Flow("progress", "RUNNING", submitted, state("running")),
    Flow("success", "SUCCEEDED", running, state("succeeded")),
    Flow("retry", "out of memory: retried with more", running, state("out_of_memory")),
    Flow("give_up", "an application error: failed for good", running, state("application_error")),
    Flow("spot_fallback", "a Spot reclaim: retried on demand", running, state("spot_interrupted")),
    Flow(
        "array_child_spot",
        "an array child reclaimed on Spot: retried alone",
        array_child,
        child_state("array_child_failed_spot"),
    ),
    Flow("cancel", "POST /jobs/{id}/cancel of a running job", running, by_hand("cancel")),
    Flow("manual_retry", "POST /jobs/{id}/retry of a failed job", failed, by_hand("retry")),
    Flow("bulk_cancel", "POST /bulk/cancel of a running job", running, in_bulk("cancel")),
    Flow("bulk_retry", "POST /bulk/retry of a failed job", failed, in_bulk("retry")),
    Flow("sweep_redispatch", "a QUEUED job whose message was lost", message_lost, sweep, scheduled=True),
    Flow("sweep_reconcile", "a job whose terminal event was lost", submitted, sweep, scheduled=True),
    Flow("sweep_vanished", "a job Batch no longer knows", vanished, sweep, scheduled=True),
    Flow("sweep_stuck", "a job stuck in RUNNABLE", stuck, sweep, scheduled=True),
    Flow(
        "queue_blocked",
        "a queue blocked by a misconfiguration: failed at once",
        waiting,
        state("queue_blocked_misconfiguration"),
    ),
    Flow("sweep_starved", "a Spot wait past its limit: to on-demand", starved, sweep, scheduled=True),
    Flow("outbox", "a give-up's alert and job event, from the stream", decided_unpublished, deliver_outbox),
    Flow("artifacts", "an output's Object Created event", submitted, output),
]


def flow_named(name: str) -> Flow:
    [flow] = [f for f in FLOWS if f.name == name]
    return flow
