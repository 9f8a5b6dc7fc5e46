"""The harness finds what it is for: each test puts back a bug that only a fault shows, and the
matrix names the case and the invariant it breaks."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchplane.adapters.notify import Notifier
from batchplane.service import dispatch
from tests.faults.flows import flow_named
from tests.faults.injector import TRANSIENT, FaultKind
from tests.faults.matrix import harness_on, plan_of, run_flow


def failures(aws: Any, flow: str, kinds: list[FaultKind]) -> dict[str, list[str]]:
    with harness_on(aws) as harness:
        report = run_flow(harness, flow_named(flow), plan_of(kinds))
    assert report.baseline_violations == []
    return {result.case.id: result.violations for result in report.failures}


def test_a_dispatcher_that_never_looks_before_submitting_makes_two_batch_jobs_of_one_attempt(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dispatcher that submits again on a redelivered message instead of adopting
    monkeypatch.setattr(dispatch, "_earlier_submission", lambda *_: None)

    # When the dispatch flow runs with the process dying before and after each call
    found = failures(aws, "dispatch", [FaultKind.CRASH_BEFORE, FaultKind.CRASH_AFTER])

    # Then every death after SubmitJob (calls: 0 SubmitJob, 1 UpdateItem) shows it: the redelivered
    # message made a second Batch job of the attempt
    assert sorted(found) == ["dispatch:crash_after:0", "dispatch:crash_after:1", "dispatch:crash_before:1"]
    for violations in found.values():
        assert any(v.startswith("2 Batch jobs named bp-") for v in violations)


def test_an_outbox_that_swallows_a_failed_publish_loses_the_event(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an outbox that goes on when PutEvents fails, as if it had published
    real = Notifier.job_event

    def swallowing(self: Notifier, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(ClientError):
            real(self, *args, **kwargs)

    monkeypatch.setattr(Notifier, "job_event", swallowing)

    # When the outbox flow runs with each call faulted
    found = failures(aws, "outbox", list(TRANSIENT))

    # Then a throttled or failing PutEvents (call 3: after the held-release check's quota read, then
    # SNS Publish) loses the "Job Failed" event for good
    assert sorted(found) == ["outbox:server_error:3", "outbox:throttled:3"]
    for violations in found.values():
        assert any(v.startswith("owed ") and v.endswith(":job_event never delivered") for v in violations)
