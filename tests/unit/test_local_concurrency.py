"""The local stack's concurrency: how many invocations of each function run at once (the template's
reserved concurrency, or a number), the Invoker holding each function to it, and the SQS and rule
triggers running that many side by side, each delivering what it received once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from batchplane_tools.cli.arguments import build_parser
from batchplane_tools.local.invoker import (
    TEMPLATE,
    UNRESERVED,
    Concurrency,
    Invoker,
    Workers,
    event_concurrency,
    function_concurrency,
)
from batchplane_tools.local.template import Stack, load_template
from batchplane_tools.local.triggers import Triggers
from tests.support import TEMPLATE as TEMPLATE_PATH

# Every copy waits at a barrier until all are running: a trigger that ran them one at a time would
# never get past it (BrokenBarrierError after this long).
BARRIER_SECONDS = 10


def stack() -> Stack:
    return Stack(name="local", template=load_template(TEMPLATE_PATH))


def concurrency_of(choice: Concurrency) -> dict[str, int]:
    local = stack()
    return {
        logical: function_concurrency(local, props, choice)
        for logical, props in local.resources("AWS::Serverless::Function")
    }


def test_template_concurrency_is_each_functions_reserved_one_else_the_unreserved_default() -> None:
    # Given template.yaml: the dispatcher reserves DispatcherConcurrency (default 5), the sweeper 1,
    # the coalescer 2

    # When the local stack runs with --concurrency template
    got = concurrency_of(TEMPLATE)

    # Then each function runs as many at once as Lambda would let it
    assert got["DispatcherFunction"] == int(stack().resolve({"Ref": "DispatcherConcurrency"})) == 5
    assert got["SweeperFunction"] == 1
    assert got["CoalescerFunction"] == 2
    reserved = ("DispatcherFunction", "SweeperFunction", "CoalescerFunction")
    others = {k: v for k, v in got.items() if k not in reserved}
    assert set(others) == {
        "ApiFunction",
        "StateChangeFunction",
        "ArtifactsFunction",
        "FileDropFunction",
        "OutboxFunction",
    }
    assert set(others.values()) == {UNRESERVED}


def test_an_event_setting_given_by_a_stack_parameter_reads_as_the_parameters_value() -> None:
    # Given the coalescer's SQS event, sized by ArrayBatchSize and ArrayBatchWindowSeconds
    [(_, coalescer)] = [
        (k, p) for k, p in stack().resources("AWS::Serverless::Function") if k == "CoalescerFunction"
    ]

    # Then the local triggers read the parameters' defaults, and the queue is left to resolve later
    event = coalescer["Events"]["Coalesce"]["Properties"]
    assert int(event["BatchSize"]) == 1000
    assert int(event["MaximumBatchingWindowInSeconds"]) == 5
    assert event["Queue"] == {"Fn::GetAtt": ["ArrayQueue", "Arn"]}


@pytest.mark.parametrize(
    ("choice", "dispatcher", "sweeper", "state_change"), [(1, 1, 1, 1), (3, 3, 1, 3), (50, 5, 1, 50)]
)
def test_a_number_is_every_functions_concurrency_under_its_reserved_cap(
    choice: int, dispatcher: int, sweeper: int, state_change: int
) -> None:
    got = concurrency_of(choice)

    assert (got["DispatcherFunction"], got["SweeperFunction"], got["StateChangeFunction"]) == (
        dispatcher,
        sweeper,
        state_change,
    )


def test_an_sqs_event_is_capped_by_its_scaling_config() -> None:
    local = stack()
    dispatcher = local.template["Resources"]["DispatcherFunction"]["Properties"]
    spec = dispatcher["Events"]["Dispatch"]["Properties"]

    assert event_concurrency(local, spec, 8) == 5
    assert event_concurrency(local, spec, 2) == 2


@pytest.mark.parametrize(
    ("argv", "expected"), [([], 1), (["--concurrency", "template"], TEMPLATE), (["--concurrency", "4"], 4)]
)
def test_the_local_command_takes_a_concurrency(argv: list[str], expected: Concurrency) -> None:
    assert build_parser().parse_args(["local", *argv]).concurrency == expected


@pytest.mark.parametrize("value", ["0", "-2", "many", ""])
def test_a_concurrency_that_is_neither_a_number_nor_template_is_a_usage_error(value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["local", "--concurrency", value])

    assert exit_info.value.code == 2


class InFlight:
    """A handler that counts the invocations running at once, each held until `release` is set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = self.most = 0
        self.release = threading.Event()

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        self.release.wait(BARRIER_SECONDS)
        with self._lock:
            self.now -= 1


def run_at_once(invoke: Invoker, handler: Callable[..., Any], copies: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=invoke, args=(handler, {"n": n})) for n in range(copies)]
    for thread in threads:
        thread.start()
    return threads


def test_the_invoker_runs_a_function_one_at_a_time_by_default() -> None:
    # Given a function the stack set no concurrency for, and four callers at once
    handler, invoke = InFlight(), Invoker()
    threads = run_at_once(invoke, handler, 4)

    # When they are let through
    handler.release.set()
    for thread in threads:
        thread.join()

    # Then never two ran at once
    assert handler.most == 1


def test_the_invoker_runs_up_to_a_functions_concurrency_at_once() -> None:
    # Given a function allowed 3 at once, and 5 callers
    handler, invoke = InFlight(), Invoker()
    invoke.allow(handler, 3)
    threads = run_at_once(invoke, handler, 5)

    # When three are running, Then the others wait for a free one
    while handler.now < 3:
        threading.Event().wait(0.01)
    assert handler.now == 3
    handler.release.set()
    for thread in threads:
        thread.join()
    assert handler.most == 3


class Sqs:
    """Queued batches of messages, one a receive; `stop` is set once the last is taken."""

    def __init__(self, batches: list[list[dict[str, Any]]], stop: threading.Event) -> None:
        self.batches = batches
        self.stop = stop
        self.deleted: list[str] = []
        self.asked: list[int] = []
        self._lock = threading.Lock()

    def receive_message(self, **params: Any) -> dict[str, Any]:
        self.asked.append(params["MaxNumberOfMessages"])
        batch = self.batches.pop(0) if self.batches else []
        if not self.batches:
            self.stop.set()
        return {"Messages": batch}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        with self._lock:
            self.deleted += [e["ReceiptHandle"] for e in Entries]

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        with self._lock:
            self.deleted.append(ReceiptHandle)


def message(n: int) -> dict[str, Any]:
    body = json.dumps({"id": f"copy-{n}", "detail-type": "Batch Job State Change"})
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1"},
    }


def test_a_rule_delivers_the_events_it_receives_side_by_side_up_to_its_concurrency() -> None:
    # Given a rule's target holding 8 copies of one event, and its function allowed 8 at once
    stop = threading.Event()
    sqs, invoke = Sqs([[message(n) for n in range(8)]], stop), Invoker()
    triggers = Triggers(sqs=sqs, events=None, invoke=invoke, stop=stop, sweep_interval=None)
    all_running = threading.Barrier(8, timeout=BARRIER_SECONDS)
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        all_running.wait()  # only 8 invocations at once get past this
        seen.append(event["id"])

    invoke.allow(handler, 8)

    # When the rule's poller runs
    triggers._poll_rule(handler, "tap", None, Workers(8, stop, "rule"))

    # Then it asked for as many as it had free workers, and all 8 ran at once, each once, and were deleted
    assert sqs.asked[0] == 8
    assert sorted(seen) == sorted(f"copy-{n}" for n in range(8))
    assert sorted(sqs.deleted) == sorted(f"r{n}" for n in range(8))


def test_an_sqs_trigger_runs_batches_side_by_side_up_to_its_concurrency() -> None:
    # Given a queue that answers three receives with a batch each, and a function allowed 3 at once
    stop = threading.Event()
    sqs, invoke = Sqs([[message(0), message(1)], [message(2)], [message(3)]], stop), Invoker()
    triggers = Triggers(sqs=sqs, events=None, invoke=invoke, stop=stop, sweep_interval=None)
    all_running = threading.Barrier(3, timeout=BARRIER_SECONDS)
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        all_running.wait()
        batches.append([r["messageId"] for r in event["Records"]])
        return {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    invoke.allow(handler, 3)

    # When its poller runs
    triggers._poll_sqs(handler, "url", "arn:aws:sqs:us-east-1:123456789012:q", 10, Workers(3, stop, "sqs"))

    # Then the three batches ran at once, each its own invocation, and all but the failed one was deleted
    assert sorted(batches) == [["m0", "m1"], ["m2"], ["m3"]]
    assert sorted(sqs.deleted) == ["r0", "r2", "r3"]
