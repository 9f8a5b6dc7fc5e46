"""The local Batch emulator runs array jobs as Batch does: a parent, children "<parent>:<index>" that
run as jobs of their own with AWS_BATCH_JOB_ARRAY_INDEX, their events, and the parent following them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchplane_tools.emulator import BatchEmulator, DefinitionSpec, QueueSpec
from tests.support import emulator_client, load_event
from tests.unit.test_batch_emulator import NOT_EMULATED, Harness, keys

SPOT = QueueSpec(name="spot", arn="arn:aws:batch:us-east-1:123456789012:job-queue/spot", capacity="SPOT")
ON_DEMAND = QueueSpec(
    name="on-demand", arn="arn:aws:batch:us-east-1:123456789012:job-queue/on-demand", capacity="ON_DEMAND"
)
# Writes its environment to <AWS_BATCH_JOB_ID>.json, then exits 3 if its index is argv[1], else 0.
REPORT = (
    "import json, os, sys; index = os.environ.get('AWS_BATCH_JOB_ARRAY_INDEX'); "
    "json.dump(dict(os.environ), open(os.environ['AWS_BATCH_JOB_ID'] + '.json', 'w')); "
    "sys.exit(3 if index == sys.argv[1] else 0)"
)
SLEEPER = "import time; time.sleep(30)"
TAGS = {"bp:array": "bp-array-0123456789abcdef01234567"}


def definition(name: str, code: str, *args: str) -> DefinitionSpec:
    return DefinitionSpec.running(name, ["python", "-c", code, *args])


class Batch(Harness):
    """The emulator's harness, with array jobs to submit."""

    def submit_array(self, size: int, job_definition: str = "report", queue: QueueSpec = ON_DEMAND) -> str:
        response = self.batch.submit_job(
            jobName="bp-array-0123456789abcdef01234567",
            jobQueue=queue.name,
            jobDefinition=job_definition,
            arrayProperties={"size": size},
            containerOverrides={"environment": [{"name": "BATCHPLANE_MANIFEST", "value": "s3://b/m.jsonl"}]},
            retryStrategy={"attempts": 1},
            tags=TAGS,
            propagateTags=True,
        )
        return str(response["jobId"])


@pytest.fixture
def batch(tmp_path: Path) -> Iterator[Batch]:
    harness = Batch(emulator=None, batch=None, workdir=tmp_path)  # type: ignore[arg-type]
    harness.emulator = BatchEmulator(
        queues=[SPOT, ON_DEMAND],
        definitions=[definition("report", REPORT, "1"), definition("sleeper", SLEEPER)],
        emit=harness.record,
        workers=3,
        cwd=tmp_path,
        seed=7,
    )
    harness.batch = emulator_client(harness.emulator.serve())
    yield harness
    harness.emulator.stop()
    if harness.emulator.log_dir is not None:
        shutil.rmtree(harness.emulator.log_dir, ignore_errors=True)


def test_a_three_child_array_runs_each_child_and_fails_its_parent_when_one_child_fails(batch: Batch) -> None:
    # Given an array job of 3 children, of which child 1 exits 3
    parent = batch.submit_array(3)
    children = [f"{parent}:{k}" for k in range(3)]

    # When they have all run
    parent_failed = batch.wait_for(parent, "FAILED")

    # Then each child went through every state as a job of its own, named as its parent, with its index
    for index, child in enumerate(children):
        ending = "FAILED" if index == 1 else "SUCCEEDED"
        assert [e["status"] for e in batch.events_of(child)] == ["RUNNABLE", "STARTING", "RUNNING", ending]
        for event in batch.events_of(child):
            assert event["jobName"] == "bp-array-0123456789abcdef01234567"
            assert event["jobArn"].endswith(f":job/{child}")
            assert event["arrayProperties"] == {"index": index}
            assert {"bp:array": TAGS["bp:array"]}.items() <= event["tags"].items()
    assert batch.events_of(children[1])[-1]["container"]["exitCode"] == 3
    # ... and its process saw its index, its own job id and the parent's environment
    for index, child in enumerate(children):
        seen = json.loads((batch.workdir / f"{child}.json").read_text())
        assert seen["AWS_BATCH_JOB_ARRAY_INDEX"] == str(index)
        assert seen["AWS_BATCH_JOB_ID"] == child
        assert seen["BATCHPLANE_MANIFEST"] == "s3://b/m.jsonl"
    # ... and the parent went PENDING once a child was RUNNABLE, and FAILED after its last child ended
    assert [e["status"] for e in batch.events_of(parent)] == ["PENDING", "FAILED"]
    with batch.lock:
        order = [e["jobId"] for e in batch.events]
    assert order.index(parent) > min(order.index(c) for c in children)
    assert order[-1] == parent
    assert parent_failed["arrayProperties"]["size"] == 3
    summary = parent_failed["arrayProperties"]["statusSummary"]
    assert {k: v for k, v in summary.items() if v} == {"SUCCEEDED": 2, "FAILED": 1}
    # ... in the shape of AWS's child and parent events
    running = batch.events_of(children[0])[2]
    assert keys(running) == keys(load_event("batch/array_child_running.json")["detail"])
    parent_sample = load_event("batch/array_parent_succeeded.json")["detail"]
    assert set(parent_failed) - {"statusReason"} == set(parent_sample) - NOT_EMULATED
    assert set(parent_failed["arrayProperties"]) == set(parent_sample["arrayProperties"]) - {
        "statusSummaryLastUpdatedAt"
    }
    # ... and DescribeJobs shows the same
    assert batch.describe(parent)["arrayProperties"] == parent_failed["arrayProperties"]
    assert batch.describe(children[2])["arrayProperties"] == {"index": 2}


def test_an_array_whose_children_all_succeed_succeeds(batch: Batch) -> None:
    # Given an array of 2 children whose command fails no index
    parent = batch.batch.submit_job(
        jobName="bp-array-ok",
        jobQueue=ON_DEMAND.name,
        jobDefinition="report",
        arrayProperties={"size": 2},
        containerOverrides={"command": ["python", "-c", REPORT, "none"]},
    )["jobId"]

    # Then the parent succeeds with both children
    succeeded = batch.wait_for(parent, "SUCCEEDED")
    assert succeeded["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 2


def test_list_jobs_by_array_job_id_lists_its_children_and_a_queue_lists_the_parent(batch: Batch) -> None:
    # Given an array of 3 that has run
    parent = batch.submit_array(3)
    batch.wait_for(parent, "FAILED")

    def listed(**request: Any) -> list[tuple[str, Any]]:
        summaries = batch.batch.list_jobs(**request)["jobSummaryList"]
        return sorted((s["jobId"], s.get("arrayProperties")) for s in summaries)

    # Then ListJobs by arrayJobId lists the children in a status; by queue, the parent alone
    assert listed(arrayJobId=parent, jobStatus="SUCCEEDED") == [
        (f"{parent}:0", {"index": 0}),
        (f"{parent}:2", {"index": 2}),
    ]
    assert listed(arrayJobId=parent, jobStatus="FAILED") == [(f"{parent}:1", {"index": 1})]
    assert listed(jobQueue=ON_DEMAND.name, jobStatus="FAILED") == [(parent, {"size": 3})]
    assert listed(arrayJobId="no-such-job", jobStatus="FAILED") == []
    with pytest.raises(ClientError, match="only one of"):
        batch.batch.list_jobs(jobQueue=ON_DEMAND.name, arrayJobId=parent)


def test_terminating_a_child_ends_only_it_and_terminating_the_parent_ends_them_all(batch: Batch) -> None:
    # Given an array of 3 sleeping children, all running
    parent = batch.submit_array(3, job_definition="sleeper")
    for k in range(3):
        batch.wait_for(f"{parent}:{k}", "RUNNING")

    # When child 1 is terminated
    batch.batch.terminate_job(jobId=f"{parent}:1", reason="only this one")

    # Then it alone ends, and the parent waits for the others
    assert batch.wait_for(f"{parent}:1", "FAILED")["statusReason"] == "only this one"
    assert [batch.describe(f"{parent}:{k}")["status"] for k in (0, 2)] == ["RUNNING", "RUNNING"]
    assert batch.describe(parent)["status"] == "PENDING"

    # When the parent is terminated, every child ends and so does the parent
    batch.batch.terminate_job(jobId=parent, reason="all of them")
    failed = batch.wait_for(parent, "FAILED")
    assert [batch.describe(f"{parent}:{k}")["statusReason"] for k in (0, 2)] == ["all of them"] * 2
    assert failed["arrayProperties"]["statusSummary"]["FAILED"] == 3
    assert failed["isTerminated"] is True


def test_cancelling_a_parent_whose_children_wait_cancels_them(batch: Batch) -> None:
    # Given an array of 5 on 3 slots: 2 children wait RUNNABLE
    parent = batch.submit_array(5, job_definition="sleeper")
    for k in range(3):
        batch.wait_for(f"{parent}:{k}", "RUNNING")

    # When the parent is cancelled
    batch.batch.cancel_job(jobId=parent, reason="cancelled")

    # Then the waiting children fail cancelled; the running ones run on (CancelJob leaves them)
    for k in (3, 4):
        cancelled = batch.wait_for(f"{parent}:{k}", "FAILED")
        assert cancelled["isCancelled"] is True
        assert cancelled["attempts"] == []
    assert batch.describe(f"{parent}:0")["status"] == "RUNNING"


def test_spot_interrupts_one_child_of_an_array(batch: Batch) -> None:
    # Given an array of 2 running on Spot
    parent = batch.submit_array(2, job_definition="sleeper", queue=SPOT)
    for k in range(2):
        batch.wait_for(f"{parent}:{k}", "RUNNING")

    # When Spot takes child 0's host
    assert batch.emulator.interrupt_spot(f"{parent}:0")

    # Then child 0 fails as its host went away, and child 1 runs on
    failed = batch.wait_for(f"{parent}:0", "FAILED")
    assert failed["statusReason"].startswith("Host EC2 (instance i-")
    assert "exitCode" not in failed["container"]
    assert batch.describe(f"{parent}:1")["status"] == "RUNNING"


@pytest.mark.parametrize("size", [0, 1, 10_001])
def test_an_array_size_out_of_batchs_range_is_a_client_exception(batch: Batch, size: int) -> None:
    with pytest.raises(ClientError, match=r"arrayProperties\.size must be between 2 and 10000"):
        batch.batch.submit_job(
            jobName="bp-array-x",
            jobQueue=ON_DEMAND.name,
            jobDefinition="report",
            arrayProperties={"size": size},
        )
    assert batch.emulator.jobs() == []
