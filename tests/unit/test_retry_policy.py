"""Retry decisions by failure class: separate budgets, Spot fallback, memory bumps, backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchplane.models.job import (
    Artifact,
    ArtifactRole,
    Attempt,
    AttemptStatus,
    Capacity,
    FailureClass,
    Job,
    JobStatus,
)
from batchplane.policy.document import load_policy, parse_policy
from batchplane.policy.retry import GiveUp, Retry, backoff_delay, decide

POLICY = load_policy(Path(__file__).parents[2] / "layers" / "core" / "policy.yaml")
NOW = datetime(2026, 11, 28, tzinfo=UTC)
SPOT_REASON = "Host EC2 (instance i-0abc) terminated."


def job_with(
    job_type: str, failures: list[tuple[FailureClass, Capacity]], memory: int = 1024, **last: object
) -> Job:
    """A job whose attempts failed with these classes, in order; the job asks for `memory` next."""
    attempts = [
        Attempt(
            number=i + 1,
            job_name=f"bp-j-{i + 1}",
            queue="q",
            job_definition="d",
            capacity=capacity,
            vcpus=1,
            memory_mib=memory,
            status=AttemptStatus.FAILED,
            failure_class=failure_class,
            status_reason=SPOT_REASON if failure_class is FailureClass.SPOT_INTERRUPTED else "boom",
            submitted_at=NOW,
        )
        for i, (failure_class, capacity) in enumerate(failures)
    ]
    if last:
        attempts[-1] = attempts[-1].model_copy(update=last)
    return Job(
        job_id="j",
        tenant="t",
        job_type=job_type,
        status=JobStatus.RUNNING,
        parameters={},
        vcpus=1,
        memory_mib=memory,
        capacity=failures[-1][1],
        output_prefix="s3://b/o/",
        created_at=NOW,
        updated_at=NOW,
        attempts=attempts,
    )


def run(job: Job) -> Retry | GiveUp:
    return decide(POLICY.job_types[job.job_type], job, random.Random(7))


def test_first_spot_reclaim_retries_on_demand_at_once_with_the_reason() -> None:
    decision = run(job_with("sort-large", [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)]))

    assert isinstance(decision, Retry)
    assert (decision.capacity, decision.delay_seconds, decision.fell_back) == (Capacity.ON_DEMAND, 0, True)
    assert decision.reason == f"attempt 1 reclaimed on Spot ({SPOT_REASON}); retrying on ON_DEMAND in 0 s"


def test_fallback_waits_for_the_policys_number_of_reclaims() -> None:
    # checksum-manifest falls back after 2 interruptions
    first = run(job_with("checksum-manifest", [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)]))
    second = run(job_with("checksum-manifest", [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)] * 2))

    assert isinstance(first, Retry) and first.capacity is Capacity.SPOT
    assert isinstance(second, Retry) and second.capacity is Capacity.ON_DEMAND


def test_once_on_demand_a_job_stays_on_demand() -> None:
    decision = run(
        job_with(
            "checksum-manifest",
            [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)] * 2
            + [(FailureClass.INFRASTRUCTURE, Capacity.ON_DEMAND)],
        )
    )

    assert isinstance(decision, Retry) and decision.capacity is Capacity.ON_DEMAND


def test_spot_reclaim_does_not_use_application_retry_budget() -> None:
    # Given checksum-manifest: 2 application retries, 5 Spot retries; 4 reclaims already happened
    history = [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)] * 2 + [
        (FailureClass.SPOT_INTERRUPTED, Capacity.ON_DEMAND)
    ] * 2
    history.append((FailureClass.APPLICATION, Capacity.ON_DEMAND))

    # When the application then fails with a retryable exit code
    decision = run(job_with("checksum-manifest", history, exit_code=1))

    # Then its own budget is untouched: it is retried
    assert isinstance(decision, Retry)


def test_a_class_gives_up_when_its_own_budget_is_spent() -> None:
    decision = run(job_with("sort-large", [(FailureClass.INFRASTRUCTURE, Capacity.SPOT)] * 3))

    assert isinstance(decision, GiveUp)
    assert "INFRASTRUCTURE: 2 retries used; giving up" in decision.reason


def test_out_of_memory_multiplies_memory_up_to_the_maximum() -> None:
    doubled = run(job_with("sort-large", [(FailureClass.OUT_OF_MEMORY, Capacity.SPOT)], memory=1024))
    capped = run(job_with("sort-large", [(FailureClass.OUT_OF_MEMORY, Capacity.SPOT)], memory=5000))
    at_max = run(job_with("sort-large", [(FailureClass.OUT_OF_MEMORY, Capacity.SPOT)], memory=8192))

    assert isinstance(doubled, Retry) and doubled.memory_mib == 2048
    assert isinstance(capped, Retry) and capped.memory_mib == 8192
    assert isinstance(at_max, GiveUp) and "already at the maximum 8192 MiB" in at_max.reason


def test_application_errors_retry_only_listed_exit_codes() -> None:
    listed = run(job_with("checksum-manifest", [(FailureClass.APPLICATION, Capacity.SPOT)], exit_code=75))
    unlisted = run(job_with("checksum-manifest", [(FailureClass.APPLICATION, Capacity.SPOT)], exit_code=2))

    assert isinstance(listed, Retry)
    assert isinstance(unlisted, GiveUp) and "exit code 2 is not retryable" in unlisted.reason


@pytest.mark.parametrize(("job_type", "expected"), [("word-count", GiveUp), ("checksum-manifest", Retry)])
def test_timeouts_retry_only_where_the_policy_says(job_type: str, expected: type) -> None:
    assert isinstance(run(job_with(job_type, [(FailureClass.TIMEOUT, Capacity.ON_DEMAND)])), expected)


def test_a_class_the_policy_does_not_name_gives_up() -> None:
    decision = run(job_with("word-count", [(FailureClass.OUT_OF_MEMORY, Capacity.ON_DEMAND)]))

    assert isinstance(decision, GiveUp) and "not retried by policy" in decision.reason


INPUT = "s3://batchplane-dev-ingest/incoming/analytics/word-count/notes.txt"


def test_a_changed_input_is_never_retried_and_the_decision_names_the_input_and_its_etag() -> None:
    # Given a job made for the content with this ETag, whose attempt found the input changed (exit 66),
    # of a job type that retries every application error it can
    job = job_with(
        "checksum-manifest",
        [(FailureClass.INPUT_CHANGED, Capacity.SPOT)],
        exit_code=66,
        status_reason="Essential container in task exited",
    )
    job = job.model_copy(
        update={
            "parameters": {"input": INPUT},
            "artifacts": [
                Artifact(uri=INPUT, role=ArtifactRole.INPUT, etag="9b2cf535f27731c974343645a3985328")
            ],
        }
    )

    # When batchplane decides
    decision = run(job)

    # Then it gives up, saying which input changed, what the job was made for, and why not again
    assert isinstance(decision, GiveUp)
    assert decision.reason == (
        "attempt 1 found its input changed (exit code 66: Essential container in task exited); "
        f'input {INPUT} is no longer what the job was made for (ETag "9b2cf535f27731c974343645a3985328"); '
        "a changed input is not retried"
    )


def test_a_changed_input_decision_names_a_version_over_an_etag_and_every_pinned_input() -> None:
    # Given a job with two inputs, one of a versioned bucket, and an attempt that found one changed
    other = "s3://batchplane-dev-ingest/manual/b.txt"
    job = job_with("word-count", [(FailureClass.INPUT_CHANGED, Capacity.ON_DEMAND)], exit_code=66)
    job = job.model_copy(
        update={
            "artifacts": [
                Artifact(uri=INPUT, role=ArtifactRole.INPUT, etag="e" * 32, version_id="v-1"),
                Artifact(uri=other, role=ArtifactRole.INPUT, etag="f" * 32, version_id="null"),
            ]
        }
    )

    # When batchplane decides, Then every pinned input is named with what it was pinned to
    decision = run(job)
    assert isinstance(decision, GiveUp)
    listed = f'{INPUT} (version v-1), {other} (ETag "{"f" * 32}")'
    assert f"one of its inputs is no longer what the job was made for (its log says which): {listed}" in (
        decision.reason
    )


def test_a_changed_input_of_a_job_that_pinned_none_is_not_retried_either() -> None:
    # Given a job with no pinned input whose program exited 66 all the same
    job = job_with("checksum-manifest", [(FailureClass.INPUT_CHANGED, Capacity.SPOT)], exit_code=66)

    # When batchplane decides, Then it gives up and says the input was the program's own
    decision = run(job)
    assert isinstance(decision, GiveUp)
    assert "the job pinned no input; its program reported an input of its own as changed" in decision.reason


def test_default_spot_fallback_is_after_one_reclaim() -> None:
    data = POLICY.model_dump(mode="json")
    data["job_types"]["sort-large"]["retry"]["SPOT_INTERRUPTED"] = {"max_retries": 3}
    policy = parse_policy(data)

    decision = decide(
        policy.job_types["sort-large"],
        job_with("sort-large", [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)]),
        random.Random(1),
    )

    assert isinstance(decision, Retry) and decision.capacity is Capacity.ON_DEMAND


@given(retry=st.integers(min_value=1, max_value=30), seed=st.integers())
def test_backoff_is_full_jitter_within_the_cap(retry: int, seed: int) -> None:
    job_type = POLICY.job_types["checksum-manifest"]  # base 30 s, cap 3600 s

    delay = backoff_delay(job_type, retry, random.Random(seed))

    assert 0 <= delay <= min(3600, 30 * 2 ** (retry - 1))
