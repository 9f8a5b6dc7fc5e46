"""What a set of jobs adds up to (lifecycle/summary.py), and who is an operator (the policy's
api.operators): pure values, no AWS."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from batchplane.lifecycle.summary import summarize
from batchplane.models.job import Capacity, FailureClass, HistoryEntry, Job, JobStatus
from batchplane.models.policy import Api
from batchplane.policy.retry import _what, failure_class_in

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _job(job_id: str, status: JobStatus, *history: tuple[str, str]) -> Job:
    return Job(
        job_id=job_id,
        tenant="analytics",
        job_type="sort-large",
        status=status,
        parameters={},
        vcpus=1,
        memory_mib=256,
        capacity=Capacity.SPOT,
        output_prefix=f"s3://artifacts/outputs/analytics/{job_id}/",
        created_at=AT,
        updated_at=AT,
        history=[HistoryEntry(at=AT, event=event, reason=reason) for event, reason in history],
    )


@pytest.mark.parametrize("failure_class", list(FailureClass))
@pytest.mark.parametrize("capacity", list(Capacity))
def test_every_reason_the_retry_policy_writes_reads_back_as_its_class(
    failure_class: FailureClass, capacity: Capacity
) -> None:
    reason = f"{_what(failure_class, 3, capacity, 'exit code 1: boom (x)')}; retrying on ON_DEMAND in 0 s"
    assert failure_class_in(reason) is failure_class


def test_a_reason_the_retry_policy_did_not_write_has_no_class() -> None:
    assert failure_class_in("submitted by hand") is None
    assert failure_class_in("attempt 1 did something new (x)") is None


def test_the_summary_counts_states_retries_by_class_and_fallbacks_from_spot_only() -> None:
    # Given a job reclaimed on Spot that fell back and then ran out of memory, a failed one, a queued one
    spot = _job(
        "j1",
        JobStatus.SUCCEEDED,
        ("fell_back", "moving from SPOT to ON_DEMAND"),
        (
            "retried",
            "attempt 1 reclaimed on Spot (Host EC2 (instance i-1) terminated.); retrying on ON_DEMAND in 0 s",
        ),
        (
            "retried",
            "attempt 2 ran out of memory (OutOfMemoryError); retrying on ON_DEMAND with 512 MiB in 0 s",
        ),
        ("succeeded", "attempt 3 succeeded on ON_DEMAND; outputs under s3://a/"),
    )
    failed = _job("j2", JobStatus.FAILED, ("gave_up", "attempt 1 failed (exit code 1: x); giving up"))
    queued = _job("j3", JobStatus.QUEUED)

    # When they are summed up
    summary = summarize([spot, failed, queued])

    # Then each state, each retry's class and the one fallback from Spot are counted
    assert summary.jobs == 3
    assert {s: n for s, n in summary.by_status.items() if n} == {
        JobStatus.SUCCEEDED: 1,
        JobStatus.FAILED: 1,
        JobStatus.QUEUED: 1,
    }
    assert summary.retries_by_failure_class == {
        FailureClass.SPOT_INTERRUPTED: 1,
        FailureClass.OUT_OF_MEMORY: 1,
    }
    assert (summary.spot_fallbacks, summary.jobs_fallen_back) == (1, ["j1"])


def test_operators_are_named_by_tenant_or_by_principal_arn_pattern() -> None:
    api = Api(operators=["ops", "arn:aws:sts::111122223333:assumed-role/Admin/*"])

    assert api.is_operator("ops", "arn:aws:sts::999999999999:assumed-role/ops/x")
    assert api.is_operator("Admin", "arn:aws:sts::111122223333:assumed-role/Admin/alice")
    assert not api.is_operator("Admin", "arn:aws:sts::444455556666:assumed-role/Admin/alice")
    assert not api.is_operator("Admins", "arn:aws:sts::111122223333:assumed-role/Admins/alice")
    assert not Api().is_operator("ops", "arn:aws:sts::999999999999:assumed-role/ops/x")


@pytest.mark.parametrize("name", ["", "ops team", "arn:aws:s3:::bucket", "arn:aws:sts::12:assumed-role/x/*"])
def test_an_operator_that_names_no_tenant_or_principal_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="operator"):
        Api(operators=[name])
