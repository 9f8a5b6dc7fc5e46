"""Where one tenant's job starts behind another tenant's flood: FIFO queue vs fair-share queue.

Runs the local Batch emulator (real processes, 2 slots) with a FIFO queue and a fair-share queue
(a share per tenant, weight 1.0 each, as the shipped policy places tenants). For each queue and each N:
both slots are held by tenant A's two long jobs, A submits N more, tenant B then submits one; the two
long jobs end, and the script records the order in which the waiting N + 1 jobs start. It prints B's
place in that order (1: the first slot that freed) and how long B waited after the slots freed.

    python bench/fair_share.py            # N = 100 and 500
    python bench/fair_share.py 50 1000
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from batchplane_tools.emulator import BatchEmulator, DefinitionSpec, FairShareSpec, QueueSpec

REGION, ACCOUNT = "us-east-1", "123456789012"
SLOTS = 2
QUEUES = {
    "FIFO": QueueSpec(
        name="fifo", arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/fifo", capacity="ON_DEMAND"
    ),
    "fair share": QueueSpec(
        name="fair",
        arn=f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/fair",
        capacity="ON_DEMAND",
        fair_share=FairShareSpec(share_decay_seconds=3600),
    ),
}


DEFINITIONS = [
    DefinitionSpec.running("quick", ["true"], memory_mib=64),
    DefinitionSpec.running("hold", ["sleep", "600"]),
]


def wait_until(check: Any, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def run(label: str, flood: int, workdir: Path) -> tuple[int, float]:
    """B's place among the N + 1 waiting jobs when they started, and seconds from the slots freeing."""
    queue = QUEUES[label]
    events: list[dict[str, Any]] = []
    emulator = BatchEmulator(
        queues=[queue], definitions=DEFINITIONS, emit=events.append, workers=SLOTS, cwd=workdir
    )
    batch = boto3.client(
        "batch",
        endpoint_url=emulator.serve(),
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1}),
    )

    def submit(name: str, tenant: str, job_definition: str = "quick") -> str:
        share = {"shareIdentifier": tenant, "schedulingPriorityOverride": 50} if queue.fair_share else {}
        return str(
            batch.submit_job(jobName=name, jobQueue=queue.name, jobDefinition=job_definition, **share)[
                "jobId"
            ]
        )

    def reached(status: str) -> list[str]:
        return [e["jobName"] for e in list(events) if e["status"] == status]

    try:
        holders = [submit(f"hold{i}", "A", "hold") for i in range(SLOTS)]
        wait_until(lambda: len(reached("RUNNING")) == SLOTS, "the holders to run")
        for i in range(flood):
            submit(f"a{i}", "A")
        submit("b", "B")
        wait_until(
            lambda: "b" in reached("RUNNABLE") and len(reached("RUNNABLE")) == flood + SLOTS + 1,
            "all waiting",
        )
        freed = time.monotonic()
        for holder in holders:
            batch.terminate_job(jobId=holder, reason="bench: free the slots")
        wait_until(lambda: "b" in reached("STARTING"), "B to start")
        waited = time.monotonic() - freed
        started = [name for name in reached("STARTING") if not name.startswith("hold")]
        return started.index("b") + 1, waited
    finally:
        emulator.stop()
        if emulator.log_dir is not None:
            shutil.rmtree(emulator.log_dir, ignore_errors=True)


def main(argv: list[str]) -> None:
    floods = [int(a) for a in argv] or [100, 500]
    print(f"tenant A floods N jobs, then tenant B submits 1; {SLOTS} slots (local Batch emulator)")
    print(f"{'queue':<11} {'N':>5}  {'B started as':>13}  {'B waited after the slots freed':>31}")
    with tempfile.TemporaryDirectory() as work:
        for flood in floods:
            for label in QUEUES:
                place, waited = run(label, flood, Path(work))
                print(f"{label:<11} {flood:>5}  {f'#{place} of {flood + 1}':>13}  {f'{waited:.2f} s':>31}")


if __name__ == "__main__":
    main(sys.argv[1:])
