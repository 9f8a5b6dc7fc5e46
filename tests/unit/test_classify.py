"""Failure classes from what Batch says, exactly as docs/architecture.md's table, on AWS-shaped fixtures."""

from __future__ import annotations

import pytest

from batchplane.lifecycle.classify import INPUT_CHANGED_EXIT_CODE, classify
from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.job import FailureClass
from tests.support import load_event


def detail(fixture: str, **changes: object) -> BatchJobDetail:
    data = load_event(f"batch/{fixture}.json")["detail"]
    data.update(changes)
    return BatchJobDetail.model_validate(data)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("succeeded", None),
        ("spot_interrupted", FailureClass.SPOT_INTERRUPTED),
        ("fargate_spot_interrupted", FailureClass.SPOT_INTERRUPTED),
        ("out_of_memory", FailureClass.OUT_OF_MEMORY),
        ("timeout", FailureClass.TIMEOUT),
        ("cannot_pull_container", FailureClass.INFRASTRUCTURE),
        ("application_error", FailureClass.APPLICATION),
        ("cancelled", FailureClass.CANCELLED),
        ("input_changed", FailureClass.INPUT_CHANGED),
        ("unknown_failure", FailureClass.UNKNOWN),
        ("array_child_succeeded", None),
        ("array_child_failed_spot", FailureClass.SPOT_INTERRUPTED),
    ],
)
def test_every_fixture_is_classified_as_documented(fixture: str, expected: FailureClass | None) -> None:
    assert classify(detail(fixture)) is expected


def test_essential_container_exited_with_exit_code_zero_is_success_evidence_not_a_failure() -> None:
    succeeded = detail("succeeded")

    assert succeeded.status_reason == "Essential container in task exited"
    assert succeeded.exit_code == 0
    assert classify(succeeded) is None


def test_essential_container_exited_alone_means_nothing() -> None:
    # Given a FAILED attempt whose only reason is the generic one and no exit code at all
    data = load_event("batch/application_error.json")["detail"]
    data["container"].pop("exitCode", None)
    for attempt in data["attempts"]:
        attempt["container"].pop("exitCode", None)

    # Then it is UNKNOWN, not APPLICATION
    assert classify(BatchJobDetail.model_validate(data)) is FailureClass.UNKNOWN


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("HOST EC2 (INSTANCE i-0123) TERMINATED.", FailureClass.SPOT_INTERRUPTED),
        ("your spot task was interrupted.", FailureClass.SPOT_INTERRUPTED),
        ("Job Attempt Duration Exceeded Timeout", FailureClass.TIMEOUT),
        ("ResourceInitializationError: unable to pull secrets", FailureClass.INFRASTRUCTURE),
        ("CannotStartContainerError: Error response from daemon", FailureClass.INFRASTRUCTURE),
        ("CannotInspectContainerError: Could not transition to inspecting", FailureClass.INFRASTRUCTURE),
        ("DockerTimeoutError: Could not transition to created", FailureClass.INFRASTRUCTURE),
        ("Task failed to start", FailureClass.INFRASTRUCTURE),
        ("Cancelled by batchplane: requested by someone", FailureClass.CANCELLED),
    ],
)
def test_prefixes_match_case_insensitively(reason: str, expected: FailureClass) -> None:
    assert classify(detail("unknown_failure", statusReason=reason)) is expected


def test_a_host_that_was_not_terminated_is_not_a_spot_reclaim() -> None:
    assert (
        classify(detail("unknown_failure", statusReason="Host EC2 (instance i-1) is draining"))
        is FailureClass.UNKNOWN
    )


def test_the_attempts_container_reason_beats_the_generic_job_reason() -> None:
    oom = detail("out_of_memory")

    assert oom.status_reason == "Essential container in task exited"
    assert classify(oom) is FailureClass.OUT_OF_MEMORY


def test_exit_code_66_is_a_changed_input_and_other_codes_stay_application_errors() -> None:
    # Given the worker contract's exit code for "a pinned input is no longer what the job was made for"
    changed = detail("input_changed")
    other = load_event("batch/input_changed.json")["detail"]
    for container in (other["container"], *(a["container"] for a in other["attempts"])):
        container["exitCode"] = 65

    # Then it is its own class, and a neighbouring code is not
    assert changed.exit_code == INPUT_CHANGED_EXIT_CODE == 66
    assert classify(changed) is FailureClass.INPUT_CHANGED
    assert classify(BatchJobDetail.model_validate(other)) is FailureClass.APPLICATION


def test_a_reason_beats_the_input_changed_exit_code() -> None:
    # Given an attempt that exited 66 while Batch reports its Spot host reclaimed
    reclaimed = detail("input_changed", statusReason="Host EC2 (instance i-0abc1234def567890) terminated.")

    # Then Batch's evidence decides, as for every other exit code
    assert classify(reclaimed) is FailureClass.SPOT_INTERRUPTED


def test_unknown_extra_fields_are_accepted() -> None:
    data = load_event("batch/running.json")["detail"]
    data["someFieldAwsAddsNextYear"] = {"nested": [1, 2]}

    assert BatchJobDetail.model_validate(data).status == "RUNNING"
