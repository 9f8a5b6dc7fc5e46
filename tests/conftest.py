"""Shared fixtures: an AWS stack on moto built from template.yaml, and the handlers wired to it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import StreamShard
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.server import ThreadedMotoServer

from batchplane.adapters.clients import client
from batchplane_tools.local.moto_atomic import serialize_dynamodb
from batchplane_tools.local.moto_speedups import (
    dump_item_results,
    number_stream_records_once,
    roll_transactions_back_from_a_journal,
)
from batchplane_tools.local.streams import StreamMapping
from batchplane_tools.local.template import Stack, provision
from tests.support import POLICY_PATH, TEMPLATE, LambdaContext, clear_caches, load_function, sqs_event

# Every test makes boto3 sessions of its own (its stack's, the handlers'), and each session's data
# loader reads botocore's service models and endpoints from JSON again: about 30 ms a client. The
# models are the same files for every session, so the sessions of this run share one loader (which
# botocore already shares between the clients of a session) and read each file once. (bench/faults.py
# runs on these fixtures, so it shares it too.)
_create_loader = botocore.session.create_loader  # type: ignore[attr-defined]


class _SearchPaths(list[str]):
    """Each boto3 Session appends boto3's data folder to its loader's search paths: a loader shared by
    every session of the run takes it once, so no state grows from test to test."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    loader = _create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)
    return loader


botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]


@pytest.fixture
def moto_server() -> Iterator[str]:
    """moto as a server on loopback, for code that reaches AWS by URL (workers, the CLI); its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach AWS: fake credentials and one region for every test."""
    fake_credentials(monkeypatch)


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "batchplane",
        "POWERTOOLS_SERVICE_NAME": "batchplane",
    }.items():
        monkeypatch.setenv(name, value)


@dataclass
class AwsStack:
    stack: Stack
    session: Any

    @property
    def env(self) -> dict[str, str]:
        return self.stack.function_environment()

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def table_items(self) -> list[dict[str, Any]]:
        return self.client("dynamodb").scan(TableName=self.env["JOBS_TABLE_NAME"])["Items"]

    def dispatch_messages(self, *, delete: bool = False) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        url = self.env["DISPATCH_QUEUE_URL"]
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                VisibilityTimeout=0 if not delete else 30,
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)
            if not delete:
                return messages
            for m in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def run_dispatcher(self) -> dict[str, Any]:
        """Deliver the queued dispatch messages to the dispatcher, as the SQS event source would."""
        messages = self.dispatch_messages(delete=True)
        if not messages:  # Lambda never invokes with an empty batch
            return {"batchItemFailures": []}
        event = sqs_event(
            [(m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"])) for m in messages]
        )
        return load_function("dispatcher").handler(event, LambdaContext())  # type: ignore[no-any-return]

    @cached_property
    def outbox(self) -> StreamMapping:
        """The outbox function's DynamoDB event (template.yaml) as Lambda runs it, on the table's
        stream: `outbox.drain()` delivers what the stream holds since the last poll."""
        handler = load_function("outbox").handler
        return self.outbox_mapping(lambda event: handler(event, LambdaContext()))

    def outbox_spec(self) -> dict[str, Any]:
        """The outbox function's DynamoDB event, resolved (template.yaml)."""
        [spec] = [
            event["Properties"]
            for event in self.stack.template["Resources"]["OutboxFunction"]["Properties"]["Events"].values()
            if event["Type"] == "DynamoDB"
        ]
        return self.stack.resolve(spec)  # type: ignore[no-any-return]

    def outbox_mapping(
        self, invoke: Callable[[dict[str, Any]], Any], *, filtered: bool = True
    ) -> StreamMapping:
        """A mapping of the outbox function's DynamoDB event that hands its batches to `invoke`
        (unfiltered: every record of the table's stream, for a test that sees them all)."""
        resolved = self.outbox_spec()
        if not filtered:
            resolved = {k: v for k, v in resolved.items() if k != "FilterCriteria"}
        sqs, dlq = self.client("sqs"), self.stack.refs["OutboxDLQ"]
        # boto3 aims a call naming a stream ARN at the account's own endpoint (<account>.streams-ddb...),
        # which in-process moto does not serve: the regional one, as with an endpoint_url.
        streams = self.session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
        return StreamMapping.of_event(
            resolved,
            streams=streams,
            stream_arn=resolved["Stream"],
            invoke=invoke,
            on_failure=lambda record: sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(record)),
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:batchplane-test-OutboxFunction",
        )

    def record_calls(self, *services: str) -> list[tuple[str, str, dict[str, Any]]]:
        """Start recording the AWS calls the handlers make: (service, operation, parameters)."""
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for service in services:

            def hook(params: dict[str, Any], model: Any, service: str = service, **_: Any) -> None:
                calls.append((service, model.name, dict(params)))

            client(service).meta.events.register("before-parameter-build", hook)
        return calls

    def batch_jobs(self) -> list[dict[str, Any]]:
        batch = self.client("batch")
        jobs: list[dict[str, Any]] = []
        for queue in (self.env["SPOT_JOB_QUEUE"], self.env["ON_DEMAND_JOB_QUEUE"]):
            for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"):
                jobs.extend(batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"])
        return jobs


def _speed_moto_up_as_the_local_stack_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs table streams every write (the outbox), and moto's rollback copy of a streamed table
    is the whole table with every stream record, deep-copied for each transaction: a test that makes
    many jobs would grow quadratic. The local stack's speed-ups roll a transaction back from a journal
    of the items it names (test_moto_speedups.py shows they answer as moto does), and its DynamoDB takes
    one request at a time, as atomic as DynamoDB's (test_moto_atomic.py); its item operations answer
    with their items dumped as JSON, not walked through moto's serializer (a fifth of a long test's
    time; test_moto_speedups.py shows botocore reads the same); here for this test only."""
    for owner, name in (
        (dynamodb_models, "copy"),
        (dynamodb_models.DynamoDBBackend, "transact_write_items"),
        (StreamShard, "add"),
        (StreamShard, "get"),
        (DynamoHandler, "call_action"),
        (DynamoDBStreamsHandler, "call_action"),
        (DynamoResult, "execute_result"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    roll_transactions_back_from_a_journal()
    number_stream_records_once()
    serialize_dynamodb()
    dump_item_results()


@contextmanager
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """template.yaml's resources on in-process moto, and the functions' environment pointing at them;
    `monkeypatch` undoes the environment and moto's patches afterwards."""
    _speed_moto_up_as_the_local_stack_does(monkeypatch)
    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.session.Session()
        stack = provision(TEMPLATE, session, stack_name="batchplane-test")
        for name, value in stack.function_environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("POLICY_PATH", str(POLICY_PATH))
        monkeypatch.setenv("SUBMIT_RATE_PER_SECOND", "1000")
        clear_caches()
        try:
            yield AwsStack(stack=stack, session=session)
        finally:
            clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """template.yaml's resources on in-process moto, and the functions' environment pointing at them."""
    with aws_stack(monkeypatch) as stack:
        yield stack


@pytest.fixture
def api(aws: AwsStack):
    """Call the API function with an event; returns (status, json body, headers)."""
    handler = load_function("api").handler

    def call(event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        response = handler(event, LambdaContext())
        body = json.loads(response["body"]) if response.get("body") else None
        headers = {
            **(response.get("headers") or {}),
            **{k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()},
        }
        return response["statusCode"], body, headers

    return call


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault matrix's report (tests/faults/), once its tests ran: flows x call sites x fault kinds,
    and each failure with the case that reproduces it."""
    from tests.faults.matrix import render, report_of

    rows = [
        row
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if report.when == "call"
        for row in report_of(report.user_properties)
    ]
    if rows:
        terminalreporter.write_line(render(sorted(rows, key=lambda row: row["flow"])))
