"""The local Batch emulator, driven by the unchanged boto3 batch client, with real local processes."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from batchplane.lifecycle.classify import classify
from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.job import FailureClass
from batchplane_tools.emulator import BatchEmulator, DefinitionSpec, QueueSpec, TimeLimitAction, parse_block
from batchplane_tools.emulator.specs import BLOCKED_REASON, STARVED_SPOT_REASON
from batchplane_tools.local.batch import batch_specs
from batchplane_tools.local.template import Stack, load_template
from tests.support import TEMPLATE, emulator_client, eventually, load_event

T = TypeVar("T")

REGION = "us-east-1"
ACCOUNT = "123456789012"
SPOT = QueueSpec(
    name="batchplane-local-spot",
    arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/batchplane-local-spot",
    capacity="SPOT",
)
ON_DEMAND = QueueSpec(
    name="batchplane-local-on-demand",
    arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/batchplane-local-on-demand",
    capacity="ON_DEMAND",
)
ESSENTIAL = "Essential container in task exited"
HOST_TERMINATED = re.compile(r"^Host EC2 \(instance i-[0-9a-f]{17}\) terminated\.$")

# Writes what the job saw to <AWS_BATCH_JOB_ID>.json in its working directory, then exits argv[2].
REPORT = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[1:], 'env': dict(os.environ), 'cwd': os.getcwd()}, "
    "open(os.environ['AWS_BATCH_JOB_ID'] + '.json', 'w')); "
    "sys.exit(int(sys.argv[2]))"
)
HOG = "import time; hog = b'x' * (300 * 1024 * 1024); time.sleep(10)"
SLEEPER = "import time; time.sleep(30)"
# A job with a child process: both pids go to <AWS_BATCH_JOB_ID>.pids once both are up.
FAMILY = (
    "import os, subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
    "open(os.environ['AWS_BATCH_JOB_ID'] + '.tmp', 'w').write(f'{os.getpid()} {child.pid}'); "
    "os.rename(os.environ['AWS_BATCH_JOB_ID'] + '.tmp', os.environ['AWS_BATCH_JOB_ID'] + '.pids'); "
    "time.sleep(30)"
)


def definition(
    name: str,
    code: str,
    *args: str,
    parameters: dict[str, str] | None = None,
    memory_mib: int = 256,
    timeout_seconds: int = 0,
    environment: dict[str, str] | None = None,
) -> DefinitionSpec:
    return DefinitionSpec(
        name=name,
        arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}:1",
        command=["python", "-c", code, *args],
        parameters=parameters or {},
        vcpus=1,
        memory_mib=memory_mib,
        timeout_seconds=timeout_seconds,
        environment=environment or {},
    )


DEFINITIONS = [
    definition(
        "report",
        REPORT,
        "Ref::word",
        "Ref::code",
        "Ref::missing",
        parameters={"word": "default", "code": "0"},
        environment={"FROM_DEFINITION": "yes"},
    ),
    definition("hog", HOG),
    definition("sleeper", SLEEPER),
    definition("family", FAMILY),
]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@dataclass
class Harness:
    emulator: BatchEmulator
    batch: Any
    workdir: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, detail: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(detail)

    def submit(self, job_definition: str = "report", queue: QueueSpec = ON_DEMAND, **extra: Any) -> str:
        """SubmitJob, by default with what batchplane always sends (one attempt, tags)."""
        request = {
            "jobName": f"bp-{job_definition}-1",
            "retryStrategy": {"attempts": 1},
            "tags": {"bp:job_id": "0d9f7c1e", "bp:attempt": "1"},
            "propagateTags": True,
            **extra,
        }
        response = self.batch.submit_job(jobQueue=queue.name, jobDefinition=job_definition, **request)
        return str(response["jobId"])

    def events_of(self, job_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["jobId"] == job_id]

    def statuses(self, job_id: str) -> list[str]:
        return [e["status"] for e in self.events_of(job_id)]

    def wait_for(self, job_id: str, status: str, timeout: float = 4.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            return next((e for e in self.events_of(job_id) if e["status"] == status), None)

        seen = f"{job_id} to be {status} (seen {self.statuses(job_id)})"
        return eventually(reached, what=seen, timeout=timeout, every=0.01)

    def describe(self, job_id: str) -> dict[str, Any]:
        [job] = self.batch.describe_jobs(jobs=[job_id])["jobs"]
        return dict(job)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def factory(**options: Any) -> Harness:
        harness = Harness(emulator=None, batch=None, workdir=tmp_path)  # type: ignore[arg-type]
        emulator = BatchEmulator(
            queues=options.pop("queues", [SPOT, ON_DEMAND]),
            definitions=DEFINITIONS,
            emit=options.pop("emit", harness.record),
            cwd=tmp_path,
            job_environment={"FROM_EMULATOR": "local"},
            seed=7,
            **options,
        )
        harness.emulator = emulator
        made.append(harness)
        harness.batch = emulator_client(emulator.serve())
        return harness

    yield factory
    for harness in made:
        harness.emulator.stop()
        if harness.emulator.log_dir is not None:
            shutil.rmtree(harness.emulator.log_dir, ignore_errors=True)


@pytest.fixture
def harness(make: Callable[..., Harness]) -> Harness:
    return make()


# Fields that the sample events carry but that the emulator does not make: newer or invented fields
# (see events/README.md) and the roles of a real job definition.
NOT_EMULATED = {
    "schedulingPriority",
    "consumableResourceProperties",
    "someFutureTopLevelField",
    "jobRoleArn",
    "executionRoleArn",
    "cpuArchitecture",
    "enableExecuteCommand",
    "taskProperties",
}


def keys(detail: dict[str, Any]) -> dict[str, set[str]]:
    shape = {
        "detail": set(detail) - NOT_EMULATED,
        "container": set(detail["container"]) - NOT_EMULATED,
    }
    for number, attempt in enumerate(detail["attempts"]):
        shape[f"attempt{number}"] = set(attempt) - NOT_EMULATED
        shape[f"attempt{number}.container"] = set(attempt["container"]) - {"name"}
    return shape


def test_a_job_exiting_0_goes_through_every_state_and_succeeds_in_aws_shape(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable in the emulator's own environment, which must not reach the job
    monkeypatch.setenv("BATCHPLANE_TEST_NOT_FOR_JOBS", "secret")

    # When a job is submitted as batchplane submits it
    job_id = harness.submit(
        jobName="bp-0d9f7c1e-1",
        parameters={"word": "hello"},
        containerOverrides={
            "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "200"}],
            "environment": [{"name": "BATCHPLANE_ATTEMPT", "value": "1"}],
        },
    )

    # Then it goes through every state, in order, and succeeds
    succeeded = harness.wait_for(job_id, "SUCCEEDED")
    assert harness.statuses(job_id) == ["RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]
    runnable, starting, running = (harness.wait_for(job_id, s) for s in ("RUNNABLE", "STARTING", "RUNNING"))

    # And each event has the shape of AWS's own event for that state
    for ours, sample in [
        (runnable, "runnable"),
        (starting, "starting"),
        (running, "running"),
        (succeeded, "succeeded"),
    ]:
        assert keys(ours) == keys(load_event(f"batch/{sample}.json")["detail"]), sample
    assert "taskArn" in starting["container"]
    assert "logStreamName" not in starting["container"]
    assert running["startedAt"] >= running["createdAt"]
    assert running["attempts"] == []

    # And the details are the job's own
    assert succeeded["jobQueue"] == ON_DEMAND.arn
    assert succeeded["jobDefinition"] == DEFINITIONS[0].arn
    assert succeeded["parameters"] == {"word": "hello", "code": "0"}
    assert succeeded["container"]["command"] == ["python", "-c", REPORT, "hello", "0", "Ref::missing"]
    assert succeeded["container"]["resourceRequirements"] == [
        {"value": "2", "type": "VCPU"},
        {"value": "200", "type": "MEMORY"},
    ]
    assert succeeded["container"]["environment"] == [
        {"name": "FROM_DEFINITION", "value": "yes"},
        {"name": "BATCHPLANE_ATTEMPT", "value": "1"},
    ]
    assert succeeded["tags"] == {
        "resourceArn": succeeded["jobArn"],
        "bp:job_id": "0d9f7c1e",
        "bp:attempt": "1",
    }
    assert succeeded["statusReason"] == ESSENTIAL
    assert succeeded["container"]["exitCode"] == 0
    [attempt] = succeeded["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["statusReason"] == ESSENTIAL
    assert attempt["container"]["logStreamName"].startswith("report/default/")
    assert succeeded["startedAt"] <= succeeded["stoppedAt"] == attempt["stoppedAt"]
    assert BatchJobDetail.model_validate(succeeded).exit_code == 0
    assert harness.describe(job_id) == succeeded

    # And the process ran with Ref:: substituted, in its working directory, in a clean environment
    seen = json.loads((harness.workdir / f"{job_id}.json").read_text())
    assert seen["argv"] == ["hello", "0", "Ref::missing"]
    assert seen["cwd"] == str(harness.workdir)
    assert seen["env"]["AWS_BATCH_JOB_ID"] == job_id
    assert seen["env"]["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert seen["env"]["AWS_BATCH_JQ_NAME"] == ON_DEMAND.name
    assert seen["env"]["AWS_BATCH_CE_NAME"] == "local-on-demand"
    assert seen["env"]["FROM_EMULATOR"] == "local"
    assert seen["env"]["FROM_DEFINITION"] == "yes"
    assert seen["env"]["BATCHPLANE_ATTEMPT"] == "1"
    assert "BATCHPLANE_TEST_NOT_FOR_JOBS" not in seen["env"]


def test_a_job_exiting_3_fails_with_exit_code_3(harness: Harness) -> None:
    # When a job exits 3
    job_id = harness.submit(parameters={"code": "3"})

    # Then it fails as Batch reports an application error
    failed = harness.wait_for(job_id, "FAILED")
    assert failed["statusReason"] == ESSENTIAL
    assert failed["container"]["exitCode"] == 3
    assert "reason" not in failed["container"]
    assert failed["attempts"][0]["container"]["exitCode"] == 3
    assert "SUCCEEDED" not in harness.statuses(job_id)


def test_a_job_over_its_memory_is_killed_as_batch_reports_an_oom(harness: Harness) -> None:
    # When a job allocates 300 MiB with 100 MiB
    job_id = harness.submit(
        "hog", containerOverrides={"resourceRequirements": [{"type": "MEMORY", "value": "100"}]}
    )

    # Then its container is killed for memory
    failed = harness.wait_for(job_id, "FAILED")
    oom = "OutOfMemoryError: Container killed due to memory usage"
    assert failed["statusReason"] == ESSENTIAL
    assert (failed["container"]["exitCode"], failed["container"]["reason"]) == (137, oom)
    [attempt] = failed["attempts"]
    assert (attempt["container"]["exitCode"], attempt["container"]["reason"]) == (137, oom)
    assert attempt["statusReason"] == ESSENTIAL
    assert keys(failed) == keys(load_event("batch/out_of_memory.json")["detail"])


def test_a_job_over_its_attempt_duration_fails_with_the_timeout_reason(harness: Harness) -> None:
    # When a 30 s job has a timeout of 1 s
    job_id = harness.submit("sleeper", timeout={"attemptDurationSeconds": 1})

    # Then it is stopped after 1 s, as Batch stops it
    failed = harness.wait_for(job_id, "FAILED")
    assert failed["statusReason"] == "Job attempt duration exceeded timeout"
    assert failed["attempts"][0]["statusReason"] == "Job attempt duration exceeded timeout"
    assert failed["container"]["exitCode"] in (137, 143)
    assert failed["timeout"] == {"attemptDurationSeconds": 1}
    assert 1000 <= failed["stoppedAt"] - failed["startedAt"] < 3000


def test_an_interrupted_spot_job_fails_as_its_host_terminated(harness: Harness) -> None:
    # Given a running job on a Spot queue and one on an on-demand queue
    spot_job = harness.submit("sleeper", queue=SPOT)
    on_demand_job = harness.submit("sleeper", queue=ON_DEMAND)
    harness.wait_for(spot_job, "RUNNING")
    harness.wait_for(on_demand_job, "RUNNING")

    # When Spot interrupts them
    assert harness.emulator.interrupt_spot(spot_job)
    assert not harness.emulator.interrupt_spot(on_demand_job)

    # Then the Spot job fails as its host went away: no exit code anywhere
    failed = harness.wait_for(spot_job, "FAILED")
    assert HOST_TERMINATED.match(failed["statusReason"])
    [attempt] = failed["attempts"]
    assert attempt["statusReason"] == failed["statusReason"]
    assert "exitCode" not in failed["container"]
    assert "exitCode" not in attempt["container"]
    assert keys(failed) == keys(load_event("batch/spot_interrupted.json")["detail"])
    assert harness.describe(on_demand_job)["status"] == "RUNNING"


def test_spot_chaos_interrupts_spot_jobs_at_its_rate(make: Callable[..., Harness]) -> None:
    # Given every Spot job is interrupted after 50-100 ms
    harness = make(spot_interruption_rate=1.0, spot_interruption_after=(0.05, 0.1))

    # When a job runs on the Spot queue
    job_id = harness.submit("sleeper", queue=SPOT)

    # Then Spot takes its host
    failed = harness.wait_for(job_id, "FAILED")
    assert HOST_TERMINATED.match(failed["statusReason"])
    assert failed["attempts"][0]["statusReason"] == failed["statusReason"]


def test_terminating_a_running_job_stops_it_with_the_given_reason(harness: Harness) -> None:
    # Given a running job
    job_id = harness.submit("sleeper")
    harness.wait_for(job_id, "RUNNING")

    # When it is terminated
    harness.batch.terminate_job(jobId=job_id, reason="Cancelled by batchplane: test")

    # Then it fails with that reason and the exit code of SIGTERM
    failed = harness.wait_for(job_id, "FAILED")
    assert failed["statusReason"] == "Cancelled by batchplane: test"
    assert failed["attempts"][0]["statusReason"] == "Cancelled by batchplane: test"
    assert failed["container"]["exitCode"] == 143
    assert failed["isTerminated"] is True
    assert keys(failed) == keys(load_event("batch/cancelled.json")["detail"])


def test_terminating_a_runnable_job_cancels_it_without_an_attempt(make: Callable[..., Harness]) -> None:
    # Given no worker, so that a job stays RUNNABLE
    harness = make(workers=0)
    job_id = harness.submit()
    harness.wait_for(job_id, "RUNNABLE")

    # When it is terminated
    harness.batch.terminate_job(jobId=job_id, reason="Cancelled by batchplane: test")

    # Then it fails at once with that reason and no attempt
    failed = harness.wait_for(job_id, "FAILED")
    assert harness.statuses(job_id) == ["RUNNABLE", "FAILED"]
    assert failed["statusReason"] == "Cancelled by batchplane: test"
    assert failed["attempts"] == []
    assert "startedAt" not in failed
    assert failed["isCancelled"] is True


def test_cancel_job_cancels_only_jobs_that_have_not_started(make: Callable[..., Harness]) -> None:
    # Given one worker, busy with a running job, and a second job waiting for it
    harness = make(workers=1)
    running = harness.submit("sleeper", jobName="first")
    harness.wait_for(running, "RUNNING")
    waiting = harness.submit("sleeper", jobName="second")
    harness.wait_for(waiting, "RUNNABLE")

    # When both are cancelled
    harness.batch.cancel_job(jobId=running, reason="cancel")
    harness.batch.cancel_job(jobId=waiting, reason="cancel")

    # Then only the waiting one ends; the running one goes on
    assert harness.wait_for(waiting, "FAILED")["statusReason"] == "cancel"
    described = harness.describe(running)
    assert (described["status"], described["isCancelled"]) == ("RUNNING", False)


def test_a_job_waits_runnable_until_a_worker_is_free(make: Callable[..., Harness]) -> None:
    # Given one worker, busy
    harness = make(workers=1)
    first = harness.submit("sleeper", jobName="first")
    harness.wait_for(first, "RUNNING")

    # When a second job comes
    second = harness.submit("report", jobName="second")
    harness.wait_for(second, "RUNNABLE")

    # Then it starts only once the first is done
    assert harness.describe(second)["status"] == "RUNNABLE"
    harness.batch.terminate_job(jobId=first, reason="make room")
    harness.wait_for(second, "SUCCEEDED")
    order = [(e["jobId"], e["status"]) for e in harness.events]
    assert order.index((first, "FAILED")) < order.index((second, "STARTING"))


def test_list_jobs_finds_jobs_by_name_in_any_status(make: Callable[..., Harness]) -> None:
    # Given three runnable jobs on the on-demand queue and one on the Spot queue
    harness = make(workers=0)
    ids = {name: harness.submit(jobName=name) for name in ("bp-a-1", "bp-a-2", "other")}
    spot = harness.submit(jobName="bp-a-3", queue=SPOT)
    for job_id in [*ids.values(), spot]:
        harness.wait_for(job_id, "RUNNABLE")

    def listed(**request: Any) -> list[str]:
        pages = harness.batch.get_paginator("list_jobs").paginate(jobQueue=ON_DEMAND.arn, **request)
        return [j["jobName"] for page in pages for j in page["jobSummaryList"]]

    # When ListJobs filters by name, Then it finds them whatever their status and the jobStatus asked
    assert listed(filters=[{"name": "JOB_NAME", "values": ["bp-a-1"]}], jobStatus="SUCCEEDED") == ["bp-a-1"]
    # And a trailing * is a case-insensitive prefix, newest first, across pages
    prefix = [{"name": "JOB_NAME", "values": ["BP-A*"]}]
    assert listed(filters=prefix, PaginationConfig={"PageSize": 1}) == ["bp-a-2", "bp-a-1"]
    # And without a filter or a status, ListJobs lists RUNNING jobs only
    assert listed() == []
    assert listed(jobStatus="RUNNABLE") == ["other", "bp-a-2", "bp-a-1"]
    [summary] = harness.batch.list_jobs(
        jobQueue=ON_DEMAND.name, filters=[{"name": "JOB_NAME", "values": ["other"]}]
    )["jobSummaryList"]
    assert summary["jobId"] == ids["other"]
    assert summary["status"] == "RUNNABLE"


def test_a_queue_snapshot_lists_its_runnable_jobs_in_the_order_they_start(
    make: Callable[..., Harness],
) -> None:
    # Given one busy worker, then three jobs waiting on the on-demand queue and one on the Spot queue
    harness = make(workers=1)
    busy = harness.submit("sleeper", jobName="busy")
    harness.wait_for(busy, "RUNNING")
    waiting = [harness.submit(jobName=name) for name in ("first", "second", "third")]
    spot = harness.submit(jobName="spot", queue=SPOT)
    for job_id in [*waiting, spot]:
        harness.wait_for(job_id, "RUNNABLE")

    # When each queue's snapshot is asked for
    on_demand = harness.batch.get_job_queue_snapshot(jobQueue=ON_DEMAND.arn)["frontOfQueue"]
    spot_front = harness.batch.get_job_queue_snapshot(jobQueue=SPOT.name)["frontOfQueue"]

    # Then each lists its own RUNNABLE jobs (not the running one) by ARN, first to start first
    assert [j["jobArn"].rsplit("/", 1)[-1] for j in on_demand["jobs"]] == waiting
    assert [j["jobArn"].rsplit("/", 1)[-1] for j in spot_front["jobs"]] == [spot]
    assert on_demand["lastUpdatedAt"] >= on_demand["jobs"][0]["earliestTimeAtPosition"]
    harness.batch.terminate_job(jobId=busy, reason="done")


def test_describe_jobs_omits_unknown_ids(harness: Harness) -> None:
    # Given one job
    job_id = harness.submit()

    # When it is described with an id Batch does not know
    jobs = harness.batch.describe_jobs(jobs=[job_id, "00000000-0000-4000-8000-000000000000"])["jobs"]

    # Then only the known job comes back
    assert [j["jobId"] for j in jobs] == [job_id]
    assert harness.batch.describe_jobs(jobs=["00000000-0000-4000-8000-000000000000"])["jobs"] == []


@pytest.mark.parametrize(
    ("queue", "job_definition"),
    [("no-such-queue", "report"), (ON_DEMAND.name, "no-such-definition"), (ON_DEMAND.name, "report:9")],
)
def test_submitting_to_an_unknown_queue_or_definition_is_a_client_exception(
    harness: Harness, queue: str, job_definition: str
) -> None:
    # When a job names a queue or a definition that does not exist
    with pytest.raises(ClientError) as raised:
        harness.batch.submit_job(jobName="bp-x-1", jobQueue=queue, jobDefinition=job_definition)

    # Then Batch refuses it as the client's error
    assert raised.value.response["Error"]["Code"] == "ClientException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert harness.emulator.jobs() == []


def test_terminating_an_unknown_job_is_a_client_exception(harness: Harness) -> None:
    with pytest.raises(ClientError) as raised:
        harness.batch.terminate_job(jobId="00000000-0000-4000-8000-000000000000", reason="x")

    assert raised.value.response["Error"]["Code"] == "ClientException"


def test_a_path_that_is_no_operation_is_404(harness: Harness) -> None:
    url = harness.batch.meta.endpoint_url + "/v1/createcomputeenvironment"
    request = urllib.request.Request(url, data=b"{}", method="POST")

    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == 404
    assert raised.value.headers["x-amzn-ErrorType"] == "ClientException"
    assert "message" in json.loads(raised.value.read())


def test_a_failing_emit_does_not_stop_the_emulator(make: Callable[..., Harness]) -> None:
    # Given an emit that always fails
    def broken(detail: dict[str, Any]) -> None:
        raise RuntimeError("the event bus is down")

    harness = make(emit=broken)

    # When jobs run
    first, second = harness.submit(jobName="first"), harness.submit(jobName="second")

    # Then they still run to the end
    eventually(
        lambda: {harness.describe(j)["status"] for j in (first, second)} == {"SUCCEEDED"},
        what="both jobs to succeed",
        timeout=20.0,
        every=0.01,
    )


def test_stop_leaves_no_process_behind(harness: Harness) -> None:
    # Given a running job that has a child process of its own
    job_id = harness.submit("family")
    pids_file = harness.workdir / f"{job_id}.pids"
    eventually(pids_file.exists, what="the job's processes to start", timeout=20.0, every=0.01)
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert all(alive(pid) for pid in pids)

    # When the emulator stops
    harness.emulator.stop()
    harness.emulator.stop()  # idempotent

    # Then neither the job nor its child is left
    eventually(
        lambda: not any(alive(pid) for pid in pids), what="the job's processes to end", timeout=2, every=0.01
    )
    assert not Path(f"/proc/{pids[0]}").exists()  # the job itself is reaped, not a zombie


def test_describe_job_queues_lists_the_emulators_queues_by_name_or_arn(harness: Harness) -> None:
    # When the job queues are described: all of them, then one by ARN and an unknown one by name
    every = harness.batch.describe_job_queues()["jobQueues"]
    asked = harness.batch.describe_job_queues(jobQueues=[SPOT.arn, "no-such-queue"])["jobQueues"]

    # Then each queue is there as Batch shows it, and an unknown one is simply not answered
    assert [(q["jobQueueName"], q["jobQueueArn"], q["state"], q["status"]) for q in every] == [
        (SPOT.name, SPOT.arn, "ENABLED", "VALID"),
        (ON_DEMAND.name, ON_DEMAND.arn, "ENABLED", "VALID"),
    ]
    assert [q["jobQueueName"] for q in asked] == [SPOT.name]
    assert every[0]["computeEnvironmentOrder"][0]["computeEnvironment"].endswith(
        ":compute-environment/local-spot"
    )


def test_an_ended_jobs_output_is_kept_up_to_the_cap_in_the_directory_given(
    make: Callable[..., Harness], tmp_path: Path
) -> None:
    # Given an emulator writing job output under a directory of its owner's, keeping one ended job's
    harness = make(log_dir=tmp_path / "jobs", keep_logs=1)

    # When two jobs run to their end, one after the other
    first = harness.submit()
    harness.wait_for(first, "SUCCEEDED")
    first_log = harness.emulator.log_path(first)
    second = harness.submit()
    harness.wait_for(second, "SUCCEEDED")

    # Then both wrote there, and only the newer one's output is kept
    second_log = harness.emulator.log_path(second)
    assert first_log is not None and second_log is not None
    assert second_log.is_relative_to(tmp_path / "jobs") and second_log.is_file()
    assert not first_log.exists()
    assert [(s, ended) for s, _, ended in harness.emulator.log_streams()] == [
        (harness.describe(first)["container"]["logStreamName"], True),
        (harness.describe(second)["container"]["logStreamName"], True),
    ]


# -- waits in vain: Spot starved (--starve-spot), a queue blocked (--block-queue NAME[:REASON]), and the
# -- queues' jobStateTimeLimitActions, emitting what Batch emits ---------------------------------------

NO_CAPACITY = "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"


class Blocked:
    """The "Batch Job Queue Blocked" details the emulator hands over."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, detail: dict[str, Any]) -> None:
        with self._lock:
            self.details.append(detail)

    def of(self, job_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for d in self.details if d["jobId"] == job_id]


@pytest.fixture
def blocked() -> Blocked:
    return Blocked()


def test_starved_spot_jobs_stay_runnable_with_batchs_reason_and_one_blocked_event(
    make: Callable[..., Harness], blocked: Blocked
) -> None:
    # Given an emulator whose Spot capacity is starved
    harness = make(starve_spot=True, emit_blocked=blocked)

    # When a job is submitted to each queue
    spot = harness.submit(queue=SPOT)
    on_demand = harness.submit(queue=ON_DEMAND)

    # Then the on-demand job runs; the Spot one waits, saying why, with one queue-blocked event
    harness.wait_for(on_demand, "SUCCEEDED")
    [event] = eventually(lambda: blocked.of(spot), what="the blocked event", timeout=4.0, every=0.01)
    assert (event["status"], event["statusReason"], event["jobQueue"]) == (
        "RUNNABLE",
        STARVED_SPOT_REASON,
        SPOT.arn,
    )
    assert harness.statuses(spot) == ["RUNNABLE"]
    assert harness.describe(spot)["statusReason"] == STARVED_SPOT_REASON
    assert BatchJobDetail.model_validate(event).job_name == "bp-report-1"  # batchplane's parser reads it
    assert blocked.of(on_demand) == []


def test_a_blocked_queue_places_nothing_and_terminate_ends_its_job_as_batch_does(
    make: Callable[..., Harness], blocked: Blocked
) -> None:
    harness = make(blocked_queues={ON_DEMAND.name: BLOCKED_REASON}, emit_blocked=blocked)
    job = harness.submit(queue=ON_DEMAND)
    eventually(lambda: blocked.of(job), what="the blocked event", timeout=4.0, every=0.01)

    harness.batch.terminate_job(jobId=job, reason=f"Ended by batchplane: {BLOCKED_REASON}")

    failed = harness.wait_for(job, "FAILED")
    assert classify(BatchJobDetail.model_validate(failed)) is FailureClass.MISCONFIGURATION
    assert harness.statuses(job) == ["RUNNABLE", "FAILED"]


def test_the_queues_time_limit_action_cancels_a_starved_job_with_batchs_reason(
    make: Callable[..., Harness],
) -> None:
    # Given a Spot queue that cancels a job RUNNABLE for capacity after 0.2 s (AWS: 600 s at least)
    limited = dataclasses.replace(SPOT, time_limit_actions=(TimeLimitAction(NO_CAPACITY, 0.2),))
    harness = make(starve_spot=True, queues=[limited, ON_DEMAND])

    job = harness.submit(queue=limited)

    failed = harness.wait_for(job, "FAILED")
    assert failed["statusReason"] == f"Canceled by JobStateTimeLimit action due to reason: {NO_CAPACITY}"
    assert failed["isCancelled"] is True
    assert classify(BatchJobDetail.model_validate(failed)) is FailureClass.CAPACITY_STARVED


def test_a_time_limit_for_another_reason_leaves_the_job_waiting(make: Callable[..., Harness]) -> None:
    limited = dataclasses.replace(
        ON_DEMAND,
        time_limit_actions=(TimeLimitAction("MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE", 0.0),),
    )
    harness = make(queues=[SPOT, limited], blocked_queues={limited.name: BLOCKED_REASON})

    job = harness.submit(queue=limited)
    eventually(lambda: harness.describe(job).get("statusReason"), what="its reason", timeout=4.0, every=0.01)

    assert harness.describe(job)["status"] == "RUNNABLE"


@pytest.mark.parametrize(
    ("text", "queue", "reason"),
    [
        ("on-demand", "batchplane-local-on-demand", BLOCKED_REASON),
        ("batchplane-local-spot", "batchplane-local-spot", BLOCKED_REASON),
        (
            "spot:MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS",
            "batchplane-local-spot",
            "MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS - blocked by the Batch emulator (--block-queue)",
        ),
        ("spot:ACTION_REQUIRED - look at it", "batchplane-local-spot", "ACTION_REQUIRED - look at it"),
    ],
)
def test_block_queue_names_a_queue_and_a_reason(text: str, queue: str, reason: str) -> None:
    assert parse_block(text, [SPOT, ON_DEMAND]) == (queue, reason)


@pytest.mark.parametrize("text", ["gpu", "local", ""])
def test_block_queue_refuses_a_name_of_no_one_queue(text: str) -> None:
    with pytest.raises(ValueError, match="names no one job queue"):
        parse_block(text, [SPOT, ON_DEMAND])


def test_the_emulator_refuses_to_block_a_queue_it_does_not_have(make: Callable[..., Harness]) -> None:
    with pytest.raises(ValueError, match="blocked_queues"):
        make(blocked_queues={"nope": BLOCKED_REASON})


def test_the_local_stack_gives_the_emulator_the_templates_time_limit_actions() -> None:
    queues, _ = batch_specs(Stack(name="batchplane-local", template=load_template(TEMPLATE)))

    by_name: dict[str, QueueSpec] = {q.name: q for q in queues}
    for name in ("batchplane-local-spot", "batchplane-local-on-demand"):
        actions = {a.reason: a.max_time_seconds for a in by_name[name].time_limit_actions}
        assert actions[NO_CAPACITY] == 14_400
        assert actions["MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"] == 600
