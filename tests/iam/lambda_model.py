"""What Lambda does with a function's role, as the template configures it: the handler's own calls
(through its clients), the SQS and DynamoDB-stream pollers of its event sources, the dead-letter queue
of an asynchronous invocation that failed every try, and the runtime's log stream and trace segments
(described as requests: Lambda's runtime is not a client here)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from batchplane_tools.iam.evaluator import Request
from batchplane_tools.local.streams import StreamMapping
from batchplane_tools.local.template import ACCOUNT, REGION
from tests.iam.harness import IamStack
from tests.support import LambdaContext, load_function, sqs_event

RUNTIME = "Lambda runtime"
POLLER = "Lambda event source mapping"
ASYNC = "Lambda asynchronous invocation"


def _folder(iam: IamStack, function: str) -> str:
    return str(iam.stack.template["Resources"][function]["Properties"]["CodeUri"]).rsplit("/", 1)[-1]


def _queue_url(iam: IamStack, arn: str) -> str:
    name = arn.rsplit(":", 1)[-1]
    [logical] = [k for (k, a), v in iam.stack.attributes.items() if a == "QueueName" and v == name]
    return iam.stack.refs[logical]


def _runtime(iam: IamStack, function: str) -> None:
    """The runtime writes the invocation's log stream (the function's log group, Lambda's default name)
    and, with Active tracing, sends its trace segments, all with the function's role."""
    role = iam.runs_as[function]
    group = f"/aws/lambda/{iam.stack.refs[function]}"
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:2026/01/01/[$LATEST]0f1e2d3c"
    keys = {"aws:SecureTransport": ("true",)}
    requests = [Request("logs:CreateLogStream", stream, keys), Request("logs:PutLogEvents", stream, keys)]
    if iam.function_property(function, "Tracing") == "Active":
        requests += [
            Request("xray:PutTraceSegments", "*", keys),
            Request("xray:PutTelemetryRecords", "*", keys),
        ]
    iam.recorder.add(role, RUNTIME, "lambda:runtime logs and traces", requests)


def invoke(iam: IamStack, function: str, event: dict[str, Any]) -> Any:
    """One invocation of `function` with its role."""
    _runtime(iam, function)
    with iam.acting(function):
        return load_function(_folder(iam, function)).handler(event, LambdaContext(function_name=function))


def invoke_async(iam: IamStack, function: str, event: dict[str, Any]) -> Any:
    """An asynchronous invocation (EventBridge): tried 1 + MaximumRetryAttempts times; an event that
    fails every try is sent to the function's DeadLetterQueue, with its role. None then."""
    tries = 1 + int(iam.function_property(function, "EventInvokeConfig", {}).get("MaximumRetryAttempts", 2))
    for _ in range(tries):
        try:
            return invoke(iam, function, event)
        except Exception:  # Lambda counts any error as a failed try
            continue
    target = iam.function_property(function, "DeadLetterQueue")
    if target is not None:
        url = _queue_url(iam, iam.stack.resolve(target["TargetArn"]))
        sqs = iam.role_client(iam.runs_as[function], ASYNC, "sqs")
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
    return None


def _event_of(iam: IamStack, function: str, kind: str) -> dict[str, Any]:
    [spec] = [
        e["Properties"] for e in iam.function_property(function, "Events", {}).values() if e["Type"] == kind
    ]
    return dict(iam.stack.resolve(spec))


def deliver_queue(iam: IamStack, function: str) -> list[dict[str, Any]]:
    """Lambda's SQS poller, with the function's role: batches from the function's queue until it is
    empty, each invoked, the records that did not fail deleted. The invocations' responses."""
    spec = _event_of(iam, function, "SQS")
    url = _queue_url(iam, spec["Queue"])
    sqs = iam.role_client(iam.runs_as[function], POLLER, "sqs")
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout"])
    responses = []
    while messages := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=min(10, int(spec.get("BatchSize", 10))), AttributeNames=["All"]
    ).get("Messages", []):
        bodies = [
            (m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"])) for m in messages
        ]
        response = invoke(iam, function, sqs_event(bodies)) or {}
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if m["MessageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=done)
        responses.append(response)
        if failed:  # Lambda makes them visible again after the visibility timeout: not in this pass
            break
    return responses


class Outbox:
    """The outbox function's DynamoDB-stream event source, polled with its role."""

    def __init__(self, iam: IamStack, function: str = "OutboxFunction") -> None:
        self.iam, self.function = iam, function

    @cached_property
    def mapping(self) -> StreamMapping:
        spec = _event_of(self.iam, self.function, "DynamoDB")
        role = self.iam.runs_as[self.function]
        destination = spec.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        sqs = self.iam.role_client(role, POLLER, "sqs")

        def on_failure(record: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=_queue_url(self.iam, destination), MessageBody=json.dumps(record))

        return StreamMapping.of_event(
            spec,
            streams=self.iam.role_client(role, POLLER, "dynamodbstreams"),
            stream_arn=spec["Stream"],
            invoke=lambda event: invoke(self.iam, self.function, event),
            on_failure=on_failure if destination else None,
            function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.iam.stack.refs[self.function]}",
        )

    def drain(self) -> None:
        self.mapping.drain()
