"""Waits in vain, decided from what Batch says: the queue-blocked event, RUNNABLE reasons, the
queues' time limit, the wait's end, and its retry decision. Pure: plain values and AWS-shaped fixtures."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from batchplane.lifecycle.attempts import note_stuck_starting, progress_of
from batchplane.lifecycle.classify import classify
from batchplane.lifecycle.waiting import end_of_wait, wait_code
from batchplane.models.batch_event import QUEUE_BLOCKED, STATE_CHANGE, BatchJobDetail, job_detail_of
from batchplane.models.job import AttemptStatus, Capacity, FailureClass
from batchplane.models.policy import JobType
from batchplane.policy.retry import GiveUp, Retry, decide
from batchplane_tools.cli.arguments import build_parser
from batchplane_tools.cli.main import _local_options
from tests.support import load_event
from tests.unit.test_retry_policy import NOW, POLICY, job_with

SORT = POLICY.job_types["sort-large"]  # capacity_wait.spot_fallback_after_seconds: 7200
CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - "
    "Service cannot fulfill the capacity requested for instance type [m6i.large]"
)
MISCONFIGURED = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is too high"


def detail(fixture: str) -> BatchJobDetail:
    event = load_event(f"batch/{fixture}.json")
    return job_detail_of(event["detail-type"], event["detail"])


def test_a_queue_blocked_event_is_its_blocking_job_with_batchs_reason_unknown_fields_ignored() -> None:
    event = load_event("batch/queue_blocked_misconfiguration.json")

    blocked = job_detail_of(event["detail-type"], event["detail"])

    assert event["detail-type"] == QUEUE_BLOCKED and "someFutureTopLevelField" in event["detail"]
    assert (blocked.status, blocked.job_queue.endswith("/batchplane-dev-on-demand")) == ("RUNNABLE", True)
    assert wait_code(blocked.status_reason) == "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
    assert event["resources"][1] == blocked.job_queue  # the event names the job and its queue


def test_an_event_about_no_batch_job_is_refused() -> None:
    with pytest.raises(ValueError, match="Batch Service Job Queue Blocked"):
        job_detail_of("Batch Service Job Queue Blocked", load_event("batch/runnable.json")["detail"])
    assert job_detail_of(STATE_CHANGE, load_event("batch/runnable.json")["detail"]).status == "RUNNABLE"


def test_a_runnable_reason_is_progress_on_the_attempt_and_other_statuses_carry_none() -> None:
    runnable = progress_of(detail("runnable_capacity"), 1, AttemptStatus.RUNNABLE, NOW)
    running = progress_of(detail("running"), 1, AttemptStatus.RUNNING, NOW)

    assert runnable.status_reason == CAPACITY
    assert running.status_reason is None


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("time_limit_capacity", FailureClass.CAPACITY_STARVED),
        ("time_limit_misconfiguration", FailureClass.MISCONFIGURATION),
    ],
)
def test_a_job_the_queues_time_limit_cancelled_is_classified_not_unknown(
    fixture: str, expected: FailureClass
) -> None:
    assert classify(detail(fixture)) is expected


def test_batchplanes_own_end_of_a_wait_classifies_itself() -> None:
    end = end_of_wait(
        status_reason=MISCONFIGURED, capacity=Capacity.ON_DEMAND, waited_seconds=1, job_type=SORT
    )
    assert end is not None
    ended = detail("runnable").model_copy(update={"status": "FAILED", "status_reason": end.reason})

    assert classify(ended) is FailureClass.MISCONFIGURATION
    assert end.reason == f"Ended by batchplane: {MISCONFIGURED}"


@pytest.mark.parametrize("capacity", [Capacity.SPOT, Capacity.ON_DEMAND])
def test_a_misconfiguration_ends_the_wait_at_once_whatever_the_capacity(capacity: Capacity) -> None:
    assert end_of_wait(status_reason=MISCONFIGURED, capacity=capacity, waited_seconds=0, job_type=None)


@pytest.mark.parametrize(
    ("reason", "capacity", "waited", "ends"),
    [
        (CAPACITY, Capacity.SPOT, 7199, False),  # within the job type's limit
        (CAPACITY, Capacity.SPOT, 7200, True),
        (None, Capacity.SPOT, 7200, True),  # no reason and no start: starved all the same
        (CAPACITY, Capacity.ON_DEMAND, 10**6, False),  # on-demand has no fallback; the queue's limit ends it
        ("ACTION_REQUIRED - an operator must look", Capacity.SPOT, 10**6, False),  # not a capacity wait
        ("UNDETERMINED - Batch cannot tell", Capacity.SPOT, 10**6, False),
    ],
)
def test_a_spot_capacity_wait_ends_past_the_job_types_limit_only(
    reason: str | None, capacity: Capacity, waited: int, ends: bool
) -> None:
    end = end_of_wait(status_reason=reason, capacity=capacity, waited_seconds=waited, job_type=SORT)

    assert (end is not None) is ends
    if end is not None:
        assert "not started on Spot in" in end.reason
        ended = detail("runnable").model_copy(update={"status": "FAILED", "status_reason": end.reason})
        assert classify(ended) is FailureClass.CAPACITY_STARVED


def test_a_job_type_without_a_capacity_wait_never_falls_back_for_it() -> None:
    word_count = POLICY.job_types["word-count"]

    assert (
        end_of_wait(status_reason=CAPACITY, capacity=Capacity.SPOT, waited_seconds=10**6, job_type=word_count)
        is None
    )


def test_a_misconfiguration_gives_up_at_once_naming_batchs_reason() -> None:
    job = job_with(
        "sort-large",
        [(FailureClass.MISCONFIGURATION, Capacity.SPOT)],
        status_reason=f"Ended by batchplane: {MISCONFIGURED}",
    )

    decision = decide(SORT, job, random.Random(1))

    assert isinstance(decision, GiveUp)
    assert MISCONFIGURED in decision.reason and "not retried" in decision.reason


def test_spot_starvation_moves_to_on_demand_at_once_and_uses_the_spot_budget() -> None:
    # sort-large: SPOT_INTERRUPTED max_retries 3
    starved = [(FailureClass.CAPACITY_STARVED, Capacity.SPOT)]
    first = decide(SORT, job_with("sort-large", starved), random.Random(1))
    spent = decide(
        SORT,
        job_with("sort-large", [(FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)] * 3 + starved),
        random.Random(1),
    )

    assert isinstance(first, Retry)
    assert (first.capacity, first.delay_seconds, first.fell_back) == (Capacity.ON_DEMAND, 0, True)
    assert isinstance(spent, GiveUp) and "SPOT_INTERRUPTED: 3 retries used" in spent.reason


def test_a_spot_reclaim_after_a_starved_spot_attempt_counts_both() -> None:
    history = [(FailureClass.CAPACITY_STARVED, Capacity.SPOT)] * 3 + [
        (FailureClass.SPOT_INTERRUPTED, Capacity.SPOT)
    ]

    assert isinstance(decide(SORT, job_with("sort-large", history), random.Random(1)), GiveUp)


def test_starvation_on_demand_follows_its_own_rule() -> None:
    # sort-large names no CAPACITY_STARVED rule: on-demand starvation (the queue's 4 h limit) gives up
    decision = decide(
        SORT, job_with("sort-large", [(FailureClass.CAPACITY_STARVED, Capacity.ON_DEMAND)]), random.Random(1)
    )

    assert isinstance(decision, GiveUp) and "CAPACITY_STARVED: not retried by policy" in decision.reason


def test_an_attempt_stuck_in_starting_is_marked_once() -> None:
    job = job_with(
        "sort-large",
        [(FailureClass.UNKNOWN, Capacity.SPOT)],
        status=AttemptStatus.STARTING,
        failure_class=None,
    )

    marked = note_stuck_starting(job, 700, NOW)

    assert marked is not None and marked.history[-1].event == "stuck_starting"
    assert "700 s in STARTING" in marked.history[-1].reason
    assert note_stuck_starting(marked, 900, NOW) is None


def test_policy_refuses_a_retry_rule_for_a_misconfiguration_and_a_capacity_wait_past_the_queues_limit() -> (
    None
):
    base = SORT.model_dump(mode="json")
    with pytest.raises(ValidationError, match="remove MISCONFIGURATION"):
        JobType.model_validate({**base, "retry": {**base["retry"], "MISCONFIGURATION": {"max_retries": 1}}})
    with pytest.raises(ValidationError, match="spot_fallback_after_seconds"):
        JobType.model_validate({**base, "capacity_wait": {"spot_fallback_after_seconds": 14_401}})
    assert JobType.model_validate(base) == SORT


def test_a_wait_batch_shows_ended_by_batchplane_ends_again_with_the_same_reason() -> None:
    # A RUNNABLE job whose statusReason is our own TerminateJob's: its FAILED is late, or the handler
    # that terminated it died before it saved the decision
    ours = "Ended by batchplane: CAPACITY:NO_START - Batch gave no reason; not started on Spot in 7300 s"

    end = end_of_wait(status_reason=ours, capacity=Capacity.SPOT, waited_seconds=0, job_type=None)

    assert end is not None and end.reason == ours


def test_batchplane_local_takes_the_emulators_wait_flags() -> None:
    args = build_parser().parse_args(
        ["local", "--starve-spot", "--block-queue", "on-demand", "--block-queue", "spot:ACTION_REQUIRED"]
    )
    default = build_parser().parse_args(["local"])

    options, plain = _local_options(args), _local_options(default)

    assert (options.starve_spot, options.block_queues) == (True, ("on-demand", "spot:ACTION_REQUIRED"))
    assert (plain.starve_spot, plain.block_queues) == (False, ())
