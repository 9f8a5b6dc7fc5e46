"""Fair share end to end: REST submit -> dispatcher -> SubmitJob with the tenant's share and priority ->
the Batch emulator serving this template's fair-share queues, which starts jobs by share, not by age."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.emulator import BatchEmulator, DefinitionSpec
from batchplane_tools.functions import LambdaContext, load_function
from batchplane_tools.local.batch import batch_specs
from tests.conftest import AwsStack
from tests.support import api_event, clear_caches, eventually, sqs_event, tenant_input

FLOOD = 200
SLOTS = 2


@dataclass
class Batch:
    emulator: BatchEmulator
    events: list[dict[str, Any]]

    def first(self, status: str, name: str) -> int | None:
        """Where in the event stream the job first reached `status`."""
        return next(
            (i for i, e in enumerate(list(self.events)) if e["jobName"] == name and e["status"] == status),
            None,
        )

    def names_reaching(self, status: str, between: tuple[int, int]) -> list[str]:
        return [e["jobName"] for e in self.events[between[0] : between[1]] if e["status"] == status]


@pytest.fixture
def batch(aws: AwsStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Batch]:
    """The Batch emulator with this template's queues (fair share included) and 2 slots; the word-count
    definition sleeps 2 s, so a flood stays queued while the test looks."""
    queues, _ = batch_specs(aws.stack)
    definition = DefinitionSpec.running(
        f"{aws.stack.name}-word-count", ["python", "-c", "import time; time.sleep(2)"]
    )
    events: list[dict[str, Any]] = []
    emulator = BatchEmulator(
        queues=queues, definitions=[definition], emit=events.append, workers=SLOTS, cwd=tmp_path
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_BATCH", emulator.serve())
    clear_caches()
    try:
        yield Batch(emulator=emulator, events=events)
    finally:
        emulator.stop()
        if emulator.log_dir is not None:
            shutil.rmtree(emulator.log_dir, ignore_errors=True)


def post(api: Any, tenant: str, **fields: Any) -> dict[str, Any]:
    body = {
        "job_type": "word-count",
        "parameters": {"input": tenant_input("notes.txt", tenant=tenant)},
        **fields,
    }
    status, job, _ = api(api_event("POST", "/jobs", body=body, tenant=tenant))
    assert status == 202, job
    return job  # type: ignore[no-any-return]


def test_one_tenants_job_starts_within_the_next_slots_after_another_tenants_flood(
    aws: AwsStack, api: Any, batch: Batch
) -> None:
    # Given tenant analytics has flooded 200 jobs, submitted to Batch, with 2 slots to run them
    flood = [post(api, "analytics") for _ in range(FLOOD)]
    assert aws.run_dispatcher() == {"batchItemFailures": []}

    # When tenant marketing then submits one job
    theirs = post(api, "marketing", priority=70)
    assert aws.run_dispatcher() == {"batchItemFailures": []}

    # Then it starts on one of the next slots that free up, not after the flood
    name = f"bp-{theirs['job_id']}-1"
    eventually(lambda: batch.first("STARTING", name) is not None, what="marketing's job to start", timeout=30)
    waited = (batch.first("RUNNABLE", name) or 0, batch.first("STARTING", name) or 0)
    ahead = batch.names_reaching("STARTING", waited)
    assert len(ahead) < SLOTS, f"{len(ahead)} of analytics's jobs started while marketing's waited"
    unstarted = {f"bp-{j['job_id']}-1" for j in flood} - set(batch.names_reaching("STARTING", (0, waited[1])))
    assert len(unstarted) > FLOOD / 2, "the flood was mostly still waiting"
    # and Batch got the tenant's share and the priority asked for, which the job shows too
    [described] = [d for d in batch.emulator.jobs() if d["jobName"] == name]
    assert (described["shareIdentifier"], described["schedulingPriority"]) == ("marketing", 70)
    status, job, _ = api(
        api_event("GET", f"/jobs/{theirs['job_id']}", resource="/jobs/{job_id}", tenant="marketing")
    )
    assert status == 200, job
    assert (job["share"], job["priority"]) == ("marketing", 70)


def test_a_job_admitted_before_fair_share_dispatches_with_its_tenants_share(
    aws: AwsStack, api: Any, batch: Batch
) -> None:
    # Given the dispatch message of a job as it was written before fair share: no share, no priority
    job = post(api, "analytics")
    [message] = aws.dispatch_messages(delete=True)
    body = {k: v for k, v in json.loads(message["Body"]).items() if k not in ("share", "priority")}

    # When the dispatcher submits it (to a fair-share queue, which refuses a job without a share)
    result = load_function("dispatcher").handler(
        sqs_event([(message["MessageId"], json.dumps(body), 1)]), LambdaContext()
    )

    # Then it went under the tenant's share at the tenant's default priority
    assert result == {"batchItemFailures": []}
    [described] = [d for d in batch.emulator.jobs() if d["jobName"] == f"bp-{job['job_id']}-1"]
    assert (described["shareIdentifier"], described["schedulingPriority"]) == ("analytics", 50)
