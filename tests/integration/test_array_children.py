"""Array jobs' children through the real handlers on moto: each child's events move its own job as a
single job's would (retries go alone, as single jobs), unwanted children are terminated one by one,
a parent's event records the parent once, cancel stops only its child, the sweeper finds a child by
its id. The array is set up as the coalescer leaves it: its parts and meta written, each member's
attempt claimed (the store's record_submission with the array's place, no Batch job id)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from batchplane.models.job import Attempt, Capacity, HistoryEntry
from batchplane.wiring import ports
from tests.support import LambdaContext, api_event, load_event, load_function, submit_job, tenant_input

PARENT = "7c4e2b19-0a5d-4f83-b6e1-9d2c8a05f347"


def array_name(members: list[str]) -> str:
    return "bp-array-" + hashlib.sha256(",".join(sorted(members)).encode()).hexdigest()[:24]


class Array:
    """Three sort-large jobs claimed by one array, as the coalescer leaves them before SubmitJob."""

    def __init__(self, aws: Any, api: Any, *, holes: tuple[int, ...] = (), size: int = 3) -> None:
        self.aws = aws
        made = [submit_job(api, "sort-large", tenant_input(f"sort/{n}.csv")) for n in range(size)]
        jobs = sorted(made, key=lambda j: j["job_id"])
        aws.dispatch_messages(delete=True)  # the coalescer consumed them
        self.name = array_name([f"{j['job_id']}#1" for j in jobs])
        self.jobs = [j["job_id"] for j in jobs]
        members = ["" if k in holes else f"{job_id}#1" for k, job_id in enumerate(self.jobs)]
        self._put({"sk": {"S": "PART#00000"}, "members": {"L": [{"S": m} for m in members]}})
        self._put({"sk": {"S": "ARRAY"}, "tenant": {"S": "analytics"}, "size": {"N": str(size)}})
        now = ports().clock()
        for index, job in enumerate(jobs):
            if index in holes:
                continue
            claim = Attempt(
                number=1,
                job_name=self.name,
                queue=aws.env["SPOT_JOB_QUEUE"],
                job_definition="batchplane-test-sort-large",
                capacity=Capacity.SPOT,
                vcpus=1,
                memory_mib=256,
                submitted_at=now,
                array_name=self.name,
                array_index=index,
            )
            entry = HistoryEntry(at=now, event="submitted", reason=f"attempt 1 claimed by {self.name}")
            assert ports().store.record_submission(job["job_id"], "analytics", claim, entry)

    def _put(self, item: dict[str, Any]) -> None:
        self.aws.client("dynamodb").put_item(
            TableName=self.aws.env["JOBS_TABLE_NAME"], Item={"pk": {"S": f"ARRAY#{self.name}"}, **item}
        )

    def submitted(self, parent: str = PARENT) -> None:
        """The coalescer's record step: the parent's id on the meta item."""
        assert ports().arrays.record_parent(self.name, parent)

    def meta(self) -> dict[str, Any]:
        return self.aws.client("dynamodb").get_item(  # type: ignore[no-any-return]
            TableName=self.aws.env["JOBS_TABLE_NAME"],
            Key={"pk": {"S": f"ARRAY#{self.name}"}, "sk": {"S": "ARRAY"}},
        )["Item"]

    def event(self, fixture: str, index: int, *, parent: str = PARENT) -> dict[str, Any]:
        """events/batch/<fixture>.json as child `index` of this array (AWS's child shape)."""
        event = load_event(f"batch/{fixture}.json")
        child = f"{parent}:{index}"
        arn = f"arn:aws:batch:us-east-1:123456789012:job/{child}"
        event["resources"] = [arn]
        event["detail"].update(
            jobId=child,
            jobArn=arn,
            jobName=self.name,
            jobQueue=self.aws.env["SPOT_JOB_QUEUE"],
            arrayProperties={"index": index},
            tags={"resourceArn": arn, "bp:tenant": "analytics", "bp:job_type": "sort-large"},
        )
        return event

    def deliver(self, fixture: str, index: int, **how: Any) -> str:
        """The state-change function handles the child's event; the writes reach the outbox."""
        handled = load_function("state_change").handler(self.event(fixture, index, **how), LambdaContext())
        self.aws.outbox.drain()
        return handled["outcome"]  # type: ignore[no-any-return]


@pytest.fixture
def claimed(aws, api):
    def make(**how: Any) -> Array:
        return Array(aws, api, **how)

    return make


def terminated(calls: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    return [params["jobId"] for _, op, params in calls if op == "TerminateJob"]


def test_each_child_moves_its_own_job_and_a_failed_child_is_retried_alone(
    aws, engine, watch, claimed
) -> None:
    # Given three jobs submitted as one array job
    array = claimed()
    array.submitted()
    first, second, third = array.jobs

    # When child 0 runs and succeeds, child 1 is reclaimed on Spot, child 2 fails in the application
    for fixture in ("array_child_running", "array_child_succeeded"):
        array.deliver(fixture, 0)
    for fixture in ("array_child_running", "array_child_failed_spot"):
        array.deliver(fixture, 1)
    array.deliver("array_child_running", 2)
    array.deliver("application_error", 2)

    # Then child 0's job succeeded, its attempt named by the child's id and its place in the array
    done = engine.get(first)
    assert done["status"] == "SUCCEEDED"
    [attempt] = done["attempts"]
    assert (attempt["batch_job_id"], attempt["array_name"], attempt["array_index"]) == (
        f"{PARENT}:0",
        array.name,
        0,
    )
    # child 1's job goes on alone: its next attempt is a single on-demand job (Spot fallback)
    aws.run_dispatcher()
    retried = engine.get(second)
    spot, alone = retried["attempts"]
    assert (spot["failure_class"], spot["batch_job_id"]) == ("SPOT_INTERRUPTED", f"{PARENT}:1")
    assert (alone["capacity"], alone["array_name"], alone["queue"]) == (
        "ON_DEMAND",
        None,
        aws.env["ON_DEMAND_JOB_QUEUE"],
    )
    assert engine.run(retried, "succeeded")["status"] == "SUCCEEDED"
    # child 2's job gave up, as sort-large's policy says for an application error (no retries), alerted
    failed = engine.get(third)
    assert (failed["status"], failed["attempts"][0]["failure_class"]) == ("FAILED", "APPLICATION")
    assert [a for a in watch.alerts() if third in a]
    events = [(e["detail-type"], e["detail"]["job_id"]) for e in watch.job_events()]
    assert sorted(events) == sorted(
        [
            ("Job Succeeded", first),
            ("Job Retrying", second),
            ("Job Succeeded", second),
            ("Job Failed", third),
        ]
    )


def test_duplicate_and_reordered_child_events_change_nothing_twice(aws, engine, watch, claimed) -> None:
    # Given an array's child 0 that ran and succeeded
    array = claimed()
    array.submitted()
    calls = aws.record_calls("batch")
    assert array.deliver("array_child_running", 0) == "progressed"
    assert array.deliver("array_child_succeeded", 0) == "succeeded"
    decided = engine.get(array.jobs[0])

    # When its events come again, and its RUNNING event arrives after its end
    outcomes = [
        array.deliver(f, 0) for f in ("array_child_succeeded", "array_child_running", "array_child_running")
    ]

    # Then nothing changed, nothing was terminated, and one "Job Succeeded" was published
    assert outcomes == ["duplicate", "stale", "stale"]
    assert engine.get(array.jobs[0])["history"] == decided["history"]
    assert terminated(calls) == []
    assert [e["detail-type"] for e in watch.job_events()] == ["Job Succeeded"]


@pytest.mark.parametrize("named_by_event", [False, True])
def test_cancelling_a_childs_job_terminates_only_that_child(
    aws, engine, api, claimed, named_by_event
) -> None:
    # Given a submitted array whose child 1 has (or has not yet) been named by an event
    array = claimed()
    array.submitted()
    if named_by_event:
        array.deliver("array_child_running", 1)
    calls = aws.record_calls("batch")

    # When the job of child 1 is cancelled
    job_id = array.jobs[1]
    status, _, _ = api(api_event("POST", f"/jobs/{job_id}/cancel", resource="/jobs/{job_id}/cancel"))

    # Then only that child is terminated: not the parent (its other children go on), nothing found by name
    assert status == 200
    assert terminated(calls) == [f"{PARENT}:1"]
    assert [op for _, op, _ in calls] == ["TerminateJob"]
    assert [engine.get(j)["status"] for j in array.jobs] == ["SUBMITTED", "CANCELLED", "SUBMITTED"]


def test_a_job_cancelled_before_its_array_was_submitted_has_its_child_terminated_at_its_first_event(
    aws, engine, api, claimed
) -> None:
    # Given a claimed job cancelled before its array was submitted: there is no child to stop yet
    array = claimed()
    job_id = array.jobs[2]
    calls = aws.record_calls("batch")
    api(api_event("POST", f"/jobs/{job_id}/cancel", resource="/jobs/{job_id}/cancel"))
    assert terminated(calls) == []

    # When the array is submitted after all and the child's first event arrives, then its end
    outcome = array.deliver("array_child_running", 2)
    ended = array.deliver("cancelled", 2)

    # Then that child alone is terminated, with a reason; the job stays cancelled, its attempt's end recorded
    assert outcome == "unwanted"
    [(_, _, params)] = [c for c in calls if c[1] == "TerminateJob"]
    assert params["jobId"] == f"{PARENT}:2"
    assert params["reason"] == f"batchplane: attempt 1 of {job_id} is not wanted"
    assert ended == "recorded"
    job = engine.get(job_id)
    assert (job["status"], job["attempts"][0]["status"]) == ("CANCELLED", "FAILED")


def test_the_child_of_a_hole_is_terminated(aws, engine, claimed) -> None:
    # Given an array whose index 2 is a hole (its job moved on before it was claimed)
    array = claimed(holes=(2,))
    array.submitted()
    calls = aws.record_calls("batch")

    # When that child's events arrive
    outcomes = [array.deliver("array_child_running", 2), array.deliver("cancelled", 2)]

    # Then the child is terminated at its running event and its end changes nothing
    assert outcomes == ["unwanted", "ignored"]
    assert terminated(calls) == [f"{PARENT}:2"]
    assert engine.get(array.jobs[2])["status"] == "QUEUED"


@pytest.mark.parametrize("recorded", [True, False])
def test_a_twin_arrays_child_is_terminated_and_never_taken_for_the_attempt(
    aws, engine, claimed, recorded
) -> None:
    # Given an array Batch holds twice (a second submission under its name), its first parent recorded
    # by the coalescer, or not yet (the twin's child may be the first event the books see)
    twin = "3f0d9a62-twin-parent"
    array = claimed()
    if recorded:
        array.submitted()
    else:
        assert array.deliver("array_child_running", 1) == "progressed"  # the first parent's child 1
    calls = aws.record_calls("batch")

    # When the twin's child 0 runs and then fails, and the first parent's child 0 runs
    outcomes = [
        array.deliver("array_child_running", 0, parent=twin),
        array.deliver("application_error", 0, parent=twin),
        array.deliver("array_child_running", 0),
    ]

    # Then the twin's child is terminated and its end decides nothing; the first parent's child is
    # the attempt's Batch job, and nothing of the first parent is terminated
    assert outcomes == ["unwanted", "ignored", "progressed"]
    assert terminated(calls) == [f"{twin}:0"]
    job = engine.get(array.jobs[0])
    assert job["status"] == "RUNNING"
    assert job["attempts"][-1]["batch_job_id"] == f"{PARENT}:0"
    assert array.meta()["parent_job_id"] == {"S": PARENT}


def test_a_parent_event_changes_no_job_and_records_the_parent_once(aws, engine, claimed) -> None:
    # Given an array Batch accepted whose parent the coalescer never recorded
    array = claimed()
    before = [engine.get(j) for j in array.jobs]

    def parent_event(parent: str) -> str:
        event = load_event("batch/array_parent_pending.json")
        event["detail"].update(jobId=parent, jobName=array.name, jobQueue=aws.env["SPOT_JOB_QUEUE"])
        return load_function("state_change").handler(event, LambdaContext())["outcome"]  # type: ignore[no-any-return]

    # When its parent's events arrive, and then one of a second parent under the same name
    outcomes = [parent_event(PARENT), parent_event(PARENT), parent_event("0b7e5d31-second-parent")]

    # Then the first parent is recorded (adopted) and stays; no job changed
    assert outcomes == ["ignored"] * 3
    assert array.meta()["parent_job_id"] == {"S": PARENT}
    assert [engine.get(j) for j in array.jobs] == before


def sweep_later() -> dict[str, Any]:
    """The sweeper, with the handlers' clock past the quiet threshold."""
    with pytest.MonkeyPatch.context() as patch:
        real = ports().clock
        patch.setattr(ports(), "clock", lambda: real() + timedelta(minutes=11))
        return load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())  # type: ignore[no-any-return]


def test_the_sweeper_resends_the_message_of_a_claimed_attempt_whose_array_has_no_parent(aws, claimed) -> None:
    # Given an array the coalescer claimed but never recorded as submitted, quiet past stale
    array = claimed(size=2)
    calls = aws.record_calls("batch")

    # When the sweeper runs
    report = sweep_later()

    # Then each claimed attempt's message goes out again, to look first (the coalescer resumes the
    # array); nothing is looked up by the array's name (that is the parent, not a child)
    assert report["redispatched"] == 2
    sent = [json.loads(m["Body"]) for m in aws.dispatch_messages(delete=True)]
    assert sorted((m["job_id"], m["attempt"], m["look_first"]) for m in sent) == [
        (j, 1, True) for j in array.jobs
    ]
    assert [op for _, op, _ in calls if op in ("ListJobs", "DescribeJobs")] == []


def test_the_sweeper_describes_a_claimed_attempt_by_its_child_id(aws, engine, claimed) -> None:
    # Given a submitted array whose child 1 no event ever named, quiet past stale
    array = claimed(size=2)
    array.submitted()
    calls = aws.record_calls("batch")

    # When the sweeper runs (and Batch does not know that child: moto ran no array)
    sweep_later()

    # Then it asked Batch about the children by their ids, and ended the lost child's attempt as lost
    described = [job for _, op, params in calls if op == "DescribeJobs" for job in params["jobs"]]
    assert sorted(described) == [f"{PARENT}:0", f"{PARENT}:1"]
    assert [op for _, op, _ in calls if op == "ListJobs"] == []
    attempt = engine.get(array.jobs[1])["attempts"][0]
    assert (attempt["status"], attempt["batch_job_id"]) == ("FAILED", f"{PARENT}:1")
    assert f"Batch no longer knows job {PARENT}:1" in attempt["status_reason"]
