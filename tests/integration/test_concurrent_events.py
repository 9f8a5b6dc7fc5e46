"""The same terminal Batch event handled by several invocations at once, as Lambda runs them side by
side, many times over: one decision, one next attempt, one alert or job event, every time.

Each round submits a job and runs its attempt, then puts 8 identical copies of AWS's terminal event
(events/batch/*.json) on the state-change rule's target, where the local stack's rule trigger takes
them and runs them on its workers, as many at once as the template lets the function run. Every copy
waits at a barrier until all 8 are running, so they read the job at the same moment. Then the table's
stream goes to the outbox and the dispatch queue to the dispatcher, and everything is counted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from batchplane_tools.local.invoker import TEMPLATE, Invoker, Workers, function_concurrency
from batchplane_tools.local.triggers import Triggers
from tests.support import LambdaContext, load_function

COPIES = 8
ROUNDS = 20
# How long a copy waits for the others at the barrier, and the test for a round's copies to finish:
# a bound on a hang, never a measure of speed.
PATIENCE_SECONDS = 30
DECISIONS = {"succeeded", "retried", "gave_up"}


@dataclass
class Copies:
    """The state-change function behind the local stack's rule trigger, and what its copies answered."""

    target: str
    outcomes: list[str]
    finished: threading.Semaphore


@pytest.fixture
def rule(aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Copies]:
    """The state-change function's EventBridge rule as the local stack runs it with `--concurrency
    template`: its target queue, polled by its trigger, each event on a worker of its own."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # as the local stack runs the functions
    props = aws.stack.template["Resources"]["StateChangeFunction"]["Properties"]
    concurrency = function_concurrency(aws.stack, props, TEMPLATE)
    assert concurrency >= COPIES, "the copies could not all run at once"
    sqs, stop = aws.client("sqs"), threading.Event()
    target = sqs.create_queue(QueueName="state-change-target", Attributes={"VisibilityTimeout": "60"})
    copies = Copies(target=target["QueueUrl"], outcomes=[], finished=threading.Semaphore(0))
    state_change = load_function("state_change").handler
    all_running = threading.Barrier(COPIES, timeout=PATIENCE_SECONDS)
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> Any:
        all_running.wait()  # every copy reads the job at the same moment
        try:
            answer = state_change(event, context)
            outcome = answer["outcome"]
            return answer
        except Exception as error:
            outcome = f"raised {error!r}"
            raise
        finally:
            with lock:
                copies.outcomes.append(outcome)
            copies.finished.release()

    invoke = Invoker()
    invoke.allow(handler, concurrency)
    triggers = Triggers(sqs=sqs, events=None, invoke=invoke, stop=stop, sweep_interval=None)
    poller = threading.Thread(
        target=triggers._poll_rule,
        args=(handler, copies.target, None, Workers(concurrency, stop, "state-change")),
    )
    poller.start()
    yield copies
    stop.set()
    poller.join(timeout=PATIENCE_SECONDS)


def deliver_copies(aws, copies: Copies, event: dict[str, Any]) -> list[str]:
    """The event, 8 times, as one EventBridge would deliver a duplicate; the outcomes of its copies."""
    copies.outcomes.clear()
    body = json.dumps(event)
    aws.client("sqs").send_message_batch(
        QueueUrl=copies.target, Entries=[{"Id": str(n), "MessageBody": body} for n in range(COPIES)]
    )
    for _ in range(COPIES):
        assert copies.finished.acquire(timeout=PATIENCE_SECONDS), f"only {copies.outcomes} finished"
    return sorted(copies.outcomes)


def job_item(aws, job_id: str) -> dict[str, Any]:
    from batchplane.wiring import ports

    job = ports().store.get(job_id)
    assert job is not None
    return job.model_dump(mode="json")


@pytest.mark.parametrize(
    ("ending", "outcome", "decided", "next_queue", "alerts", "job_event"),
    [
        # out of memory: retried at once with twice the memory, on the same (Spot) queue
        ("out_of_memory", "retrying", ["retried"], "SPOT_JOB_QUEUE", 0, "Job Retrying"),
        # a Spot reclaim: retried at once on on-demand (sort-large falls back after one)
        ("spot_interrupted", "retrying", ["fell_back", "retried"], "ON_DEMAND_JOB_QUEUE", 0, "Job Retrying"),
        # an application error sort-large does not retry: given up, with one alert
        ("application_error", "failed", ["gave_up"], None, 1, "Job Failed"),
    ],
)
def test_copies_of_one_terminal_event_handled_at_once_make_one_decision_every_time(
    aws,
    engine,
    watch,
    rule: Copies,
    ending: str,
    outcome: str,
    decided: list[str],
    next_queue: str | None,
    alerts: int,
    job_event: str,
) -> None:
    submissions = aws.record_calls("batch")
    running = load_function("state_change").handler  # its write owes nothing: no outbox to drain
    for round_ in range(ROUNDS):
        # Given a sort-large job whose first attempt is running on Spot
        job = engine.submit()
        assert running(engine.event("running", job), LambdaContext())["outcome"] == "progressed"
        del submissions[:]

        # When 8 copies of its attempt's terminal event are handled at once
        outcomes = deliver_copies(aws, rule, engine.event(ending, job))
        aws.outbox.drain()
        dispatched = aws.dispatch_messages()
        aws.run_dispatcher()

        # Then exactly one copy decided, the others found it decided; one decision in the history
        where = f"round {round_}: "
        assert outcomes == sorted([outcome] + ["duplicate"] * (COPIES - 1)), where + str(outcomes)
        after = job_item(aws, job["job_id"])
        history = [h["event"] for h in after["history"] if h["event"] in DECISIONS | {"fell_back"}]
        assert history == decided, where + str(after["history"])
        # one next attempt: one dispatch message, one SubmitJob (on the queue the decision chose)
        submitted = [params for _, op, params in submissions if op == "SubmitJob"]
        if next_queue is None:
            assert (dispatched, submitted, len(after["attempts"])) == ([], [], 1), where
        else:
            assert len(dispatched) == 1 and len(submitted) == 1, where + f"{dispatched} {submitted}"
            assert submitted[0]["jobQueue"] == aws.env[next_queue], where
            assert submitted[0]["jobName"].endswith("-2") and len(after["attempts"]) == 2, where
        # and one alert (a give-up's only) and one job event, each delivered once from the outbox
        assert len(watch.alerts()) == alerts, where
        assert [e["detail-type"] for e in watch.job_events()] == [job_event], where
