"""The emulator's pick of the next RUNNABLE job: FIFO on a plain queue; on a fair-share queue the share
with least usage for its weight first, then the higher scheduling priority, then the older job."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchplane_tools.emulator import BatchEmulator, DefinitionSpec
from batchplane_tools.emulator.fairshare import FairShare
from batchplane_tools.emulator.specs import FairShareSpec, QueueSpec
from tests.support import emulator_client, eventually

FAIR = QueueSpec(
    name="fair", arn="arn:q/fair", capacity="ON_DEMAND", fair_share=FairShareSpec(share_decay_seconds=3600)
)
FIFO = QueueSpec(name="fifo", arn="arn:q/fifo", capacity="ON_DEMAND")


@dataclass
class J:
    seq: int
    share_identifier: str | None = "a"
    scheduling_priority: int = 0
    queue: QueueSpec = FAIR
    vcpus: str = "1"


def flood(share: str, count: int, start: int = 0, queue: QueueSpec = FAIR) -> list[J]:
    return [J(seq=start + i, share_identifier=share, queue=queue) for i in range(count)]


def test_fifo_queue_starts_the_oldest_job_whatever_its_share() -> None:
    waiting = [*flood("a", 3, queue=FIFO), J(seq=3, share_identifier="b", queue=FIFO)]

    assert FairShare().pick(waiting, running=[], now=0.0).seq == 0


def test_a_share_that_runs_nothing_goes_before_a_flooding_share() -> None:
    # Given share a running 2 jobs with 500 more waiting, and share b's one job submitted after them
    running = flood("a", 2)
    waiting = [*flood("a", 500, start=2), J(seq=502, share_identifier="b")]

    # Then b's job starts on the next free slot
    assert FairShare().pick(waiting, running, now=0.0).share_identifier == "b"


def test_shares_take_turns_by_usage_and_ties_go_to_the_older_job() -> None:
    fair = FairShare()
    waiting = [*flood("a", 4), *flood("b", 4, start=4)]
    running: list[J] = []
    started = []
    for _ in range(4):
        job = fair.pick(waiting, running, now=0.0)
        waiting.remove(job)
        running.append(job)
        started.append(job.share_identifier)

    assert started == ["a", "b", "a", "b"]


def test_a_lower_weight_gets_more_of_the_slots() -> None:
    # Given share a weighing 0.5 (twice the compute of b, which weighs 1.0)
    queue = QueueSpec(
        name="w", arn="arn:q/w", capacity="ON_DEMAND", fair_share=FairShareSpec(weights={"a": 0.5})
    )
    fair = FairShare()
    waiting = [*flood("a", 10, queue=queue), *flood("b", 10, start=10, queue=queue)]
    running: list[J] = []
    for _ in range(6):
        job = fair.pick(waiting, running, now=0.0)
        waiting.remove(job)
        running.append(job)

    # Then of 6 slots a holds 4 and b 2
    assert sorted(j.share_identifier or "" for j in running) == ["a", "a", "a", "a", "b", "b"]


def test_within_a_share_the_higher_priority_starts_first_then_the_older() -> None:
    waiting = [
        J(seq=0, scheduling_priority=1),
        J(seq=1, scheduling_priority=9),
        J(seq=2, scheduling_priority=9),
    ]

    assert FairShare().pick(waiting, running=[], now=0.0).seq == 1


def test_past_usage_counts_until_it_decays() -> None:
    # Given share a ran 1 vCPU for 3600 s that ended at t=0, and b ran nothing
    fair = FairShare()
    fair.ran(J(seq=0, share_identifier="a"), seconds=3600, now=0.0)
    waiting = [J(seq=1, share_identifier="a"), J(seq=2, share_identifier="b")]

    # Then b goes first now, and usage decays with the window (e^-1 after one)
    assert fair.pick(waiting, running=[], now=0.0).share_identifier == "b"
    assert fair.usage(FAIR, "a", [], now=0.0) == 1.0
    assert abs(fair.usage(FAIR, "a", [], now=3600.0) - 0.36788) < 1e-4


def test_prefix_weights_apply_to_the_shares_they_start() -> None:
    spec = FairShareSpec(weights={"team*": 0.25, "solo": 2.0})

    assert (spec.weight("teamA"), spec.weight("solo"), spec.weight("other")) == (0.25, 2.0, 1.0)


# -- the emulator, driven by boto3 -------------------------------------------------------------------

REGION, ACCOUNT = "us-east-1", "123456789012"
FAIR_QUEUE = QueueSpec(
    name="local-fair",
    arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/local-fair",
    capacity="ON_DEMAND",
    fair_share=FairShareSpec(share_decay_seconds=3600),
)
FIFO_QUEUE = QueueSpec(
    name="local-fifo", arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/local-fifo", capacity="SPOT"
)
QUICK = DefinitionSpec.running("quick", ["python", "-c", "import time; time.sleep(0.05)"])
# Holds the one slot long enough for every later submission to be RUNNABLE when it frees, however
# slowly a loaded machine answers them: the pick then sees them all.
HOLD = DefinitionSpec.running("hold", ["python", "-c", "import time; time.sleep(1.5)"])


@dataclass
class Local:
    batch: Any
    events: list[dict[str, Any]]

    def submit(
        self, name: str, queue: QueueSpec = FAIR_QUEUE, definition: str = "quick", **extra: Any
    ) -> str:
        return str(
            self.batch.submit_job(jobName=name, jobQueue=queue.name, jobDefinition=definition, **extra)[
                "jobId"
            ]
        )

    def refusal(self, **extra: Any) -> str:
        with pytest.raises(ClientError) as refused:
            self.submit("refused", **extra)
        assert refused.value.response["Error"]["Code"] == "ClientException"
        return str(refused.value.response["Error"]["Message"])

    def started(self) -> list[str]:
        return [e["jobName"] for e in list(self.events) if e["status"] == "STARTING"]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Callable[[int], Local]]:
    made: list[BatchEmulator] = []

    def factory(workers: int) -> Local:
        events: list[dict[str, Any]] = []
        emulator = BatchEmulator(
            queues=[FAIR_QUEUE, FIFO_QUEUE],
            definitions=[QUICK, HOLD],
            emit=events.append,
            cwd=tmp_path,
            workers=workers,
        )
        made.append(emulator)
        batch = emulator_client(emulator.serve())
        return Local(batch=batch, events=events)

    yield factory
    for emulator in made:
        emulator.stop()
        if emulator.log_dir is not None:
            shutil.rmtree(emulator.log_dir, ignore_errors=True)


def test_a_fair_share_queue_refuses_a_job_without_a_share_identifier_as_batch_does(
    local: Callable[[int], Local],
) -> None:
    emulator = local(0)

    assert "shareIdentifier is required" in emulator.refusal()
    assert "letters and digits" in emulator.refusal(shareIdentifier="team-a")
    assert "between 0 and 9999" in emulator.refusal(shareIdentifier="a", schedulingPriorityOverride=10000)
    assert "fair share scheduling policy" in emulator.refusal(queue=FIFO_QUEUE, shareIdentifier="a")


def test_a_fair_share_job_shows_its_share_and_priority_and_a_fifo_job_neither(
    local: Callable[[int], Local],
) -> None:
    emulator = local(0)

    fair = emulator.submit("fair", shareIdentifier="analytics", schedulingPriorityOverride=70)
    fifo = emulator.submit("fifo", queue=FIFO_QUEUE)

    described = {j["jobName"]: j for j in emulator.batch.describe_jobs(jobs=[fair, fifo])["jobs"]}
    assert (described["fair"]["shareIdentifier"], described["fair"]["schedulingPriority"]) == (
        "analytics",
        70,
    )
    assert "shareIdentifier" not in described["fifo"]


def test_a_tenants_one_job_starts_on_the_next_free_slot_after_another_tenants_flood(
    local: Callable[[int], Local],
) -> None:
    # Given one slot, and share a's 8 jobs submitted before share b's one
    emulator = local(1)
    for i in range(8):
        emulator.submit(f"a{i}", definition="hold" if i == 0 else "quick", shareIdentifier="a")
    emulator.submit("b0", shareIdentifier="b")

    # When they have all run
    eventually(lambda: len(emulator.started()) == 9, what="every job to start", timeout=20)

    # Then b's job started on the slot that freed after a's first started, not after a's eighth
    started = emulator.started()
    assert started.index("b0") <= 2, started
