"""Property: however Batch's events are duplicated and reordered, a job ends as the in-order stream says.

Random duplications and permutations of each attempt's event stream (and late copies of older
attempts' events) are fed to the real state-change use case on the real DynamoDB store (moto);
the dispatch queue is an in-memory fake so backoff delays do not slow the test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchplane.models.batch_event import BatchJobDetail
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import FailureClass, Job
from batchplane.models.request import JobRequest
from batchplane.service import jobs
from batchplane.service.dispatch import dispatch
from batchplane.service.ports import Ports
from batchplane.service.state_change import handle_state_change
from batchplane.wiring import ports
from tests.support import batch_event, tenant_input

ENDINGS = [
    "spot_interrupted",
    "out_of_memory",
    "cannot_pull_container",
    "application_error",
    "timeout",
    "succeeded",
]
PROGRESS = ["runnable", "starting", "running"]
DECISIONS = {"retried", "gave_up", "succeeded"}


class InMemoryDispatch:
    def __init__(self) -> None:
        self.messages: list[DispatchMessage] = []

    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
        self.messages.append(message)

    def send_all(self, messages: Sequence[DispatchMessage], delay_seconds: int = 0) -> None:
        self.messages.extend(messages)


def play(p: Ports, endings: list[str], draw: Any | None) -> tuple[Job, Counter[str]]:
    """Run one job through `endings`, one per attempt; shuffle and duplicate events when `draw` is given."""
    queue = InMemoryDispatch()
    p.dispatch = queue
    submitted: Counter[str] = Counter()
    real_submit = p.batch.submit

    def counting_submit(**kwargs: Any) -> str:
        submitted[kwargs["name"]] += 1
        return real_submit(**kwargs)

    p.batch.submit = counting_submit  # type: ignore[method-assign]
    request = JobRequest(
        tenant="analytics", job_type="sort-large", parameters={"input": tenant_input("in.csv")}
    )
    job_id = jobs.submit(p, request).job.job_id
    seen: list[dict[str, Any]] = []

    def drain() -> None:
        while queue.messages:
            dispatch(p, queue.messages.pop(0))

    for ending in endings:
        drain()
        job = p.store.get(job_id)
        assert job is not None
        if job.status.is_terminal:
            break
        events = [batch_event(name, job=job)["detail"] for name in [*PROGRESS, ending]]
        stream = list(events)
        if draw is not None:
            stream += draw(st.lists(st.sampled_from(events), max_size=4), label="duplicates")
            if seen:
                stream += draw(
                    st.lists(st.sampled_from(seen), max_size=3), label="late events of older attempts"
                )
            stream = draw(st.permutations(stream), label="order")
        for detail in stream:
            handle_state_change(p, BatchJobDetail.model_validate(detail))
        seen += events
    drain()
    final = p.store.get(job_id)
    assert final is not None
    return final, submitted


def shape(job: Job) -> tuple[Any, ...]:
    return (
        job.status,
        job.capacity,
        job.memory_mib,
        [(a.number, a.status, a.failure_class, a.capacity, a.memory_mib) for a in job.attempts],
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endings=st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=6), data=st.data())
def test_duplicated_and_reordered_events_end_like_the_in_order_stream(
    aws, endings: list[str], data: Any
) -> None:
    p = ports()
    saved_dispatch, saved_submit = p.dispatch, p.batch.submit
    try:
        expected, _ = play(p, endings, draw=None)
        got, submitted = play(p, endings, draw=data.draw)
    finally:
        p.dispatch, p.batch.submit = saved_dispatch, saved_submit  # type: ignore[method-assign]

    # the same final state as the in-order stream
    assert shape(got) == shape(expected)
    # no attempt submitted twice, attempts numbered 1..n
    assert all(count == 1 for count in submitted.values()), submitted
    assert [a.number for a in got.attempts] == list(range(1, len(got.attempts) + 1))
    # every class within its own budget
    rules = p.policy.job_types["sort-large"]
    failures = Counter(a.failure_class for a in got.attempts if a.failure_class)
    for failure_class, count in failures.items():
        assert count <= rules.rule(FailureClass(failure_class)).max_retries + 1
    # exactly one decision per ended attempt, and at most one terminal state
    ended = [a for a in got.attempts if a.status.is_terminal]
    assert sum(1 for h in got.history if h.event in DECISIONS) == len(ended)
    assert sum(1 for h in got.history if h.event in ("gave_up", "succeeded")) <= 1


@pytest.mark.parametrize(
    "endings", [["spot_interrupted", "succeeded"], ["out_of_memory", "out_of_memory", "succeeded"]]
)
def test_in_order_streams_reach_the_expected_end(aws, endings: list[str]) -> None:
    p = ports()
    saved_dispatch = p.dispatch
    try:
        job, _ = play(p, endings, draw=None)
    finally:
        p.dispatch = saved_dispatch

    assert job.status.value == "SUCCEEDED"
    assert len(job.attempts) == len(endings)
