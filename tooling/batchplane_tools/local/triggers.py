"""The functions' triggers, wired from each function's Events in template.yaml and run as Lambda runs them:
SQS event source mappings, DynamoDB stream event source mappings (streams.py: filter criteria, partial
batch failures, retries, an on-failure destination), EventBridge rules (asynchronous invocation,
retries, a DLQ) and schedules. Each calls its function's `handler` in this process, through the
`Invoker`; an SQS or rule trigger runs up to its function's concurrency of invocations at once, on
`Workers` of its own (invoker.py).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchplane.models.base import build_all
from batchplane.wiring import page_token_key, ports
from batchplane_tools.functions import load_function
from batchplane_tools.local.invoker import (
    Concurrency,
    Handler,
    Invoker,
    Workers,
    event_concurrency,
    function_concurrency,
)
from batchplane_tools.local.streams import StreamMapping
from batchplane_tools.local.template import ACCOUNT, REGION, Stack

log = logging.getLogger(__name__)

# After this many failed deliveries of one event, it goes to the rule's DLQ (Lambda's async
# invocation retries twice).
EVENT_DELIVERIES = 3
# Lambda polls each stream shard four times a second.
STREAM_POLL_SECONDS = 0.25
# An SQS event source mapping's batch: at most 10 messages a ReceiveMessage, 10,000 a batch, and 6 MB
# of payload (Lambda's invocation limit) however many that is.
SQS_RECEIVE_MAX = 10
SQS_BATCH_MAX = 10_000
SQS_PAYLOAD_BYTES = 6 * 1024 * 1024
BATCH_POLL_SECONDS = 0.05  # inside a batching window, between receives that found nothing


class Triggers:
    """The SQS, DynamoDB, EventBridge-rule and Schedule events of the template's functions, each on its
    own thread until `stop` is set. (The Api event is the API Gateway's: `wire` hands its handler back.)"""

    def __init__(
        self,
        *,
        sqs: Any,
        events: Any,
        invoke: Invoker,
        stop: threading.Event,
        sweep_interval: float | None,
        streams: Any = None,
        concurrency: Concurrency = 1,
    ) -> None:
        self._sqs = sqs
        self._events = events
        self._streams = streams
        self._invoke = invoke
        self._stop = stop
        self._sweep_interval = sweep_interval
        self._concurrency = concurrency
        self._threads: list[threading.Thread] = []

    def wire(self, stack: Stack) -> Handler | None:
        """Starts every function's triggers; returns the handler of the function with an Api event."""
        functions = [
            (logical, props, load_function(Path(str(props["CodeUri"])).name).handler)
            for logical, props in stack.resources("AWS::Serverless::Function")
        ]
        # The functions share this process on threads: every model is built before the first trigger
        # fires, so no two first uses of one model race (pydantic before 2.14, which SAM CLI pins), and
        # so are the ports (settings, policy, clients' stand-ins) and the page-token key's holder, so
        # two first invocations at once share one set, as they would share nothing in Lambda.
        build_all()
        ports()
        page_token_key()
        api: Handler | None = None
        for logical, props, handler in functions:
            concurrency = function_concurrency(stack, props, self._concurrency)
            self._invoke.allow(handler, concurrency)
            for event_name, event in (props.get("Events") or {}).items():
                name, kind, spec = f"{logical}-{event_name}", event["Type"], event.get("Properties", {})
                if kind == "SQS":
                    queue = stack.resolve(spec["Queue"])
                    batch_size = min(int(stack.resolve(spec.get("BatchSize", 10))), SQS_BATCH_MAX)
                    window = float(stack.resolve(spec.get("MaximumBatchingWindowInSeconds", 0)))
                    workers = Workers(event_concurrency(stack, spec, concurrency), self._stop, name)
                    url = self._queue_url(queue)
                    poll = functools.partial(self._poll_sqs, window=window)
                    self._spawn(name, poll, handler, url, queue, batch_size, workers)
                elif kind == "DynamoDB":
                    self._spawn(name, self._poll_stream, self.stream_mapping(stack, logical, spec, handler))
                elif kind == "EventBridgeRule":
                    self._route_rule(stack, name, spec, handler, Workers(concurrency, self._stop, name))
                elif kind == "Schedule":
                    self._spawn(name, self._schedule, handler, self._interval(stack, spec))
                elif kind == "Api":
                    api = handler
        return api

    def join(self, timeout: float) -> None:
        """Waits for the trigger threads to see `stop` (each returns within its 1 s long poll, once the
        invocations it has in flight are done)."""
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _queue_url(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[-1]
        return str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _receive(self, url: str, wait: int = 1, **params: Any) -> list[dict[str, Any]] | None:
        """One long poll of a queue: its messages, [] after a failure (logged), None at stop."""
        try:
            messages: list[dict[str, Any]] = self._sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=wait, AttributeNames=["All"], **params
            ).get("Messages", [])
        except Exception:  # the server is going away at stop
            if self._stop.is_set():
                return None
            log.exception("receiving from %s failed", url)
            time.sleep(1)
            return []
        return messages

    # -- SQS event source mapping ----------------------------------------------------------------------

    def _poll_sqs(
        self, handler: Handler, url: str, arn: str, batch_size: int, workers: Workers, *, window: float = 0.0
    ) -> None:
        """Lambda's SQS event source: batches of records, partial batch responses, deletes on success;
        up to the workers' number of batches at once, each gathered only once a worker is free."""
        try:
            while workers.reserve():
                messages = self._gather(url, batch_size, window)
                if not messages:
                    workers.release()
                    if messages is None:
                        return
                    continue
                workers.run(functools.partial(self._deliver_batch, handler, url, arn, messages))
        finally:
            workers.close()

    def _gather(self, url: str, batch_size: int, window: float) -> list[dict[str, Any]] | None:
        """One batch as Lambda gathers it: receives of up to 10 messages until the batch has
        `batch_size` of them, its bodies reach 6 MB, or `window` seconds have passed since its first
        message came ([] if none came, None at stop). A message past 6 MB goes back to the queue.
        With no window, one receive's messages are the batch."""
        batch: list[dict[str, Any]] = []
        payload, first_at = 0, 0.0
        while len(batch) < batch_size:
            left = window - (time.monotonic() - first_at) if batch else 1.0
            if left <= 0:
                break
            wanted = min(SQS_RECEIVE_MAX, batch_size - len(batch))
            messages = self._receive(
                url, min(1, int(left)), MaxNumberOfMessages=wanted, MessageAttributeNames=["All"]
            )
            if messages is None:  # at stop: what was gathered is received again after its visibility timeout
                return None
            if not batch:
                if not messages:
                    return []
                first_at = time.monotonic()
            elif not messages:
                self._stop.wait(min(left, BATCH_POLL_SECONDS))
            for at, message in enumerate(messages):
                payload += len(message["Body"].encode("utf-8"))
                if payload > SQS_PAYLOAD_BYTES and batch:
                    self._release(url, messages[at:])
                    return batch
                batch.append(message)
        return batch

    def _release(self, url: str, messages: list[dict[str, Any]]) -> None:
        """Messages received but left out of the batch are visible again at once."""
        for start in range(0, len(messages), SQS_RECEIVE_MAX):
            self._sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start : start + SQS_RECEIVE_MAX])
                ],
            )

    def _deliver_batch(self, handler: Handler, url: str, arn: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [_sqs_record(m, arn) for m in messages]}
        try:
            result = self._invoke(handler, event) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("handler failed on a batch from %s; the batch will be redelivered", url)
            return
        self._delete(url, [m for m in messages if m["MessageId"] not in failed])

    def _delete(self, url: str, done: list[dict[str, Any]]) -> None:
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )

    # -- DynamoDB stream event source mapping ----------------------------------------------------------

    def stream_mapping(
        self, stack: Stack, logical: str, spec: dict[str, Any], handler: Handler
    ) -> StreamMapping:
        """The mapping a function's DynamoDB event makes, its failures described to its on-failure
        destination (an SQS queue) as Lambda describes them."""
        if self._streams is None:
            raise RuntimeError(f"{logical} reads a DynamoDB stream: give Triggers a dynamodbstreams client")
        resolved = stack.resolve(spec)
        destination = resolved.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        on_failure = None
        if destination:
            if not str(destination).startswith("arn:aws:sqs:"):
                raise NotImplementedError(f"{logical}: only an SQS on-failure destination is emulated")
            url = self._queue_url(str(destination))

            def on_failure(record: dict[str, Any]) -> None:
                self._sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

        return StreamMapping.of_event(
            resolved,
            streams=self._streams,
            stream_arn=str(resolved["Stream"]),
            invoke=functools.partial(self._invoke, handler),
            on_failure=on_failure,
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack.name}-{logical}",
        )

    def _poll_stream(self, mapping: StreamMapping) -> None:
        """Lambda polls the stream's shards without pause while there is work and a few times a second
        when there is none; a failed batch is delivered again after a short, growing pause."""
        failures = 0
        while not self._stop.is_set():
            try:
                delivery = mapping.poll()
            except Exception:  # the server is going away at stop
                if self._stop.is_set():
                    return
                log.exception("reading %s failed", mapping.stream_arn)
                self._stop.wait(1)
                continue
            if delivery is None:
                self._stop.wait(STREAM_POLL_SECONDS)
            elif delivery.dead_lettered:
                failures = 0
                log.error("stream batch failed every retry; described in the on-failure destination")
            elif delivery.failed:
                failures += 1
                log.warning(
                    "stream batch failed (%d): records %s are delivered again",
                    failures,
                    ", ".join(delivery.failed),
                    exc_info=delivery.error,
                )
                self._stop.wait(min(5.0, 0.05 * 2**failures))
            else:
                failures = 0

    # -- EventBridge rules -----------------------------------------------------------------------------

    def _route_rule(
        self, stack: Stack, name: str, spec: dict[str, Any], handler: Handler, workers: Workers
    ) -> None:
        """The template's rule on moto's bus, with an SQS queue as its target, drained into the function.

        Anything put on the bus (the Batch emulator, or `aws events put-events --endpoint-url ...`) is
        matched by moto against the rule's own pattern.
        """
        events, sqs = self._events, self._sqs
        rule = f"{stack.name}-{name}"[:64]
        tap = sqs.create_queue(QueueName=f"{rule}-target"[:80], Attributes={"VisibilityTimeout": "5"})[
            "QueueUrl"
        ]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = stack.resolve(spec.get("EventBusName", "default"))
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(stack.resolve(spec["Pattern"])))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "function", "Arn": tap_arn}])
        dead_letters = spec.get("DeadLetterConfig", {}).get("Arn")
        dlq = self._queue_url(stack.resolve(dead_letters)) if dead_letters else None
        self._spawn(name, self._poll_rule, handler, tap, dlq, workers)

    def _poll_rule(self, handler: Handler, tap: str, dlq: str | None, workers: Workers) -> None:
        """EventBridge invokes the function once per event, asynchronously, retrying a failure; up to
        the workers' number of events at once."""
        try:
            while free := workers.reserve(most=10):
                messages = self._receive(tap, MaxNumberOfMessages=free)
                if messages is None:
                    workers.release(free)
                    return
                workers.release(free - len(messages))
                for message in messages:
                    workers.run(functools.partial(self._deliver_event, handler, tap, dlq, message))
        finally:
            workers.close()

    def _deliver_event(self, handler: Handler, tap: str, dlq: str | None, message: dict[str, Any]) -> None:
        try:
            self._invoke(handler, json.loads(message["Body"]))
        except Exception:
            deliveries = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
            if deliveries < EVENT_DELIVERIES:
                log.exception("event delivery %d failed; retrying", deliveries)
                return
            log.exception("event failed %d times; kept in the DLQ", deliveries)
            if dlq:
                self._sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])
        self._sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])

    # -- Schedules -------------------------------------------------------------------------------------

    def _interval(self, stack: Stack, spec: dict[str, Any]) -> float:
        if self._sweep_interval is not None:
            return self._sweep_interval
        return schedule_interval(str(stack.resolve(_first_branch(spec["Schedule"]))))

    def _schedule(self, handler: Handler, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._invoke(handler, _scheduled_event())
            except Exception:
                log.exception("scheduled invocation failed")


def schedule_interval(schedule: str) -> float:
    """Seconds between runs of a `rate(N unit)` schedule; 300 for any other expression."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", schedule)
    if not match:
        return 300.0
    unit = {"second": 1, "minute": 60, "hour": 3600}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)


def _first_branch(value: Any) -> Any:
    """A Fn::If picks a branch by a condition the local stack does not evaluate: take the else branch,
    the general one (e.g. rate(N minutes) over the rate(1 minute) special case)."""
    if isinstance(value, dict) and "Fn::If" in value:
        return value["Fn::If"][2]
    return value


def _scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/local-schedule"],
        "detail": {},
    }


def _sqs_record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }
