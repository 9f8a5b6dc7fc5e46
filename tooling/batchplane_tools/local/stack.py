"""`batchplane local`: the production handlers, unchanged, on one machine.

AWS (DynamoDB, S3, SQS, SNS, EventBridge) is moto's ThreadedMotoServer on loopback; AWS Batch is the
local emulator, reached by the unchanged adapters through AWS_ENDPOINT_URL_BATCH. Every resource and
every trigger comes from template.yaml: the tables, buckets (with their notifications), queues,
topics and buses are provisioned from it, each function's SQS, EventBridge-rule, schedule and API
events are wired as it says, and each trigger calls the function's `handler` in this process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from batchplane.models.base import build_all
from batchplane_tools.emulator import BatchEmulator, DefinitionSpec, QueueSpec
from batchplane_tools.functions import LambdaContext, load_function
from batchplane_tools.local.moto_speedups import keep_moto_fast
from batchplane_tools.local.template import ACCOUNT, REGION, Stack, job_definition, provision
from batchplane_tools.paths import DEFAULT_POLICY, ROOT, STATE_FILE, TEMPLATE
from batchplane_tools.state_file import LocalInfo

log = logging.getLogger("batchplane.local")

LOCAL_TENANT = "local"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION}
# After this many failed deliveries of one event, it goes to the rule's DLQ (Lambda's async
# invocation retries twice).
EVENT_DELIVERIES = 3

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalOptions:
    api_port: int = 8080
    aws_port: int = 5000
    host: str = "127.0.0.1"
    policy: Path = DEFAULT_POLICY
    template: Path = TEMPLATE
    workers: int = 2
    spot_interruption_rate: float = 0.0
    spot_interruption_after: float = 1.0
    seed: int | None = None
    state_file: Path = STATE_FILE
    stack_name: str = "batchplane-local"
    sweep_interval: float | None = None  # seconds; None: the template's schedule


class _Invoker:
    """Runs each function's invocations one at a time, as one Lambda instance would, and different
    functions side by side, as in AWS: the dispatcher pacing SubmitJob must not hold up the API.

    (The functions share one process, so Powertools' logger context may mix keys between two
    functions' concurrent log lines; metrics are off locally.)
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Handler, threading.Lock] = {}

    def __call__(self, handler: Handler, event: dict[str, Any]) -> Any:
        with self._guard:
            lock = self._locks.setdefault(handler, threading.Lock())
        with lock:
            return handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))


class LocalStack:
    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._invoke = _Invoker()
        self._moto: Any = None
        self._api: ThreadingHTTPServer | None = None
        self.emulator: BatchEmulator | None = None
        self.stack: Stack | None = None
        self.info: LocalInfo | None = None
        self._session: Any = None
        # Clients are thread-safe and the session is not: every thread here uses these two, made
        # once on the starting thread.
        self._events: Any = None
        self._sqs: Any = None
        self._api_handler: Handler | None = None

    # -- start and stop ------------------------------------------------------------------------------

    def start(self) -> LocalInfo:
        from moto.server import ThreadedMotoServer

        options = self.options
        self._moto = ThreadedMotoServer(ip_address=options.host, port=options.aws_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        aws_url = f"http://{host}:{port}"
        os.environ.update(CREDENTIALS)
        os.environ["AWS_ENDPOINT_URL"] = aws_url

        import boto3

        self._session = boto3.session.Session(region_name=REGION)
        self._events = self._session.client("events")
        self._sqs = self._session.client("sqs")
        stack = provision(options.template, self._session, options.stack_name, batch=False)
        self.stack = stack
        keep_moto_fast()
        queues, definitions = self._batch_specs(stack)
        self.emulator = BatchEmulator(
            queues=queues,
            definitions=definitions,
            emit=self._emit_batch_event,
            workers=options.workers,
            spot_interruption_rate=options.spot_interruption_rate,
            spot_interruption_after=(options.spot_interruption_after / 4, options.spot_interruption_after),
            seed=options.seed,
            job_environment={**CREDENTIALS, "AWS_ENDPOINT_URL": aws_url},
            cwd=ROOT,
        )
        batch_url = self.emulator.serve(options.host, 0)
        os.environ["AWS_ENDPOINT_URL_BATCH"] = batch_url
        self._set_function_environment(stack)
        self._wire_triggers(stack)
        api_url = self._serve_api(stack)
        self.info = LocalInfo(
            api_url=api_url,
            aws_endpoint_url=aws_url,
            batch_endpoint_url=batch_url,
            region=REGION,
            tenant=LOCAL_TENANT,
            ingest_bucket=os.environ.get("INGEST_BUCKET", ""),
            artifact_bucket=os.environ["ARTIFACT_BUCKET"],
            jobs_table=os.environ["JOBS_TABLE_NAME"],
            alert_topic_arn=os.environ["ALERT_TOPIC_ARN"],
            event_bus_name=os.environ["EVENT_BUS_NAME"],
            pid=os.getpid(),
            outputs=stack.outputs(),
            function_environment={
                name: os.environ[name]
                for name in [
                    *stack.function_environment(),
                    "AWS_ENDPOINT_URL",
                    "AWS_ENDPOINT_URL_BATCH",
                    *CREDENTIALS,
                ]
            },
        )
        self.info.write(options.state_file)
        return self.info

    def stop(self) -> None:
        self._stop.set()
        if self.emulator is not None:
            self.emulator.stop()
        if self._api is not None:
            self._api.shutdown()
            self._api.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._moto is not None:
            self._moto.stop()
        self.options.state_file.unlink(missing_ok=True)

    # -- environment and Batch -----------------------------------------------------------------------

    def _set_function_environment(self, stack: Stack) -> None:
        os.environ.update(stack.function_environment())
        os.environ["POLICY_PATH"] = str(self.options.policy)
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        # One process does every function's work: pace SubmitJob by Batch's account limit, not a share.
        os.environ["SUBMIT_RATE_PER_SECOND"] = "50"

    def _batch_specs(self, stack: Stack) -> tuple[list[QueueSpec], list[DefinitionSpec]]:
        """Job queues (with the capacity of their compute environments) and job definitions, from
        the template; their ARNs become the stack's refs, as a deploy would make them."""
        capacity_of: dict[str, str] = {}
        for logical, props in stack.resources("AWS::Batch::ComputeEnvironment"):
            kind = str(props.get("ComputeResources", {}).get("Type", "EC2"))
            capacity_of[logical] = "SPOT" if "SPOT" in kind else "ON_DEMAND"
            stack.refs[logical] = f"arn:aws:batch:{REGION}:{ACCOUNT}:compute-environment/{logical}"
        queues = []
        for logical, props in stack.resources("AWS::Batch::JobQueue"):
            name = str(stack.resolve(props["JobQueueName"]))
            arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}"
            first = sorted(props["ComputeEnvironmentOrder"], key=lambda o: int(o["Order"]))[0]
            environment = first["ComputeEnvironment"].get("Ref", "")
            queues.append(QueueSpec(name=name, arn=arn, capacity=capacity_of.get(environment, "ON_DEMAND")))
            stack.refs[logical] = arn
        definitions = []
        for logical, props in stack.resources("AWS::Batch::JobDefinition"):
            definition = job_definition(stack, props)
            arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{definition.name}:1"
            definitions.append(
                DefinitionSpec(
                    name=definition.name,
                    arn=arn,
                    command=definition.command,
                    parameters=definition.parameters,
                    vcpus=definition.resources.get("VCPU", 1),
                    memory_mib=definition.resources.get("MEMORY", 512),
                    timeout_seconds=definition.timeout_seconds,
                    environment=definition.environment,
                )
            )
            stack.refs[logical] = arn
        return queues, definitions

    def _emit_batch_event(self, detail: dict[str, Any]) -> None:
        """The emulator's state changes go onto the event bus, as Batch's do in AWS."""
        self._events.put_events(
            Entries=[
                {
                    "Source": "aws.batch",
                    "DetailType": "Batch Job State Change",
                    "Detail": json.dumps(detail),
                    "Resources": [detail["jobArn"]],
                }
            ]
        )

    # -- triggers --------------------------------------------------------------------------------------

    def _wire_triggers(self, stack: Stack) -> None:
        functions = [
            (logical, props, load_function(Path(str(props["CodeUri"])).name).handler)
            for logical, props in stack.resources("AWS::Serverless::Function")
        ]
        # The functions share this process on threads: every model is built before the first trigger
        # fires, so no two first uses of one model race (pydantic before 2.14, which SAM CLI pins).
        build_all()
        for logical, props, handler in functions:
            for event_name, event in (props.get("Events") or {}).items():
                kind, spec = event["Type"], event.get("Properties", {})
                if kind == "SQS":
                    queue = stack.resolve(spec["Queue"])
                    url = self._queue_url(queue)
                    self._spawn(
                        f"{logical}-{event_name}",
                        self._poll_sqs,
                        handler,
                        url,
                        queue,
                        int(spec.get("BatchSize", 10)),
                    )
                elif kind == "EventBridgeRule":
                    self._route_rule(stack, logical, event_name, spec, handler)
                elif kind == "Schedule":
                    self._spawn(
                        f"{logical}-{event_name}", self._schedule, handler, self._interval(stack, spec)
                    )
                elif kind == "Api":
                    self._api_handler = handler

    def _queue_url(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[-1]
        return str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _receive(self, url: str, **params: Any) -> list[dict[str, Any]] | None:
        """One long poll of a queue: its messages, [] after a failure (logged), None at stop."""
        try:
            messages: list[dict[str, Any]] = self._sqs.receive_message(
                QueueUrl=url, WaitTimeSeconds=1, AttributeNames=["All"], **params
            ).get("Messages", [])
        except Exception:  # the server is going away at stop
            if self._stop.is_set():
                return None
            log.exception("receiving from %s failed", url)
            time.sleep(1)
            return []
        return messages

    def _poll_sqs(self, handler: Handler, url: str, arn: str, batch_size: int) -> None:
        """Lambda's SQS event source: batches of records, partial batch responses, deletes on success."""
        sqs = self._sqs
        while not self._stop.is_set():
            messages = self._receive(
                url, MaxNumberOfMessages=min(10, batch_size), MessageAttributeNames=["All"]
            )
            if messages is None:
                return
            if not messages:
                continue
            event = {"Records": [_sqs_record(m, arn) for m in messages]}
            try:
                result = self._invoke(handler, event) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception:
                log.exception("handler failed on a batch from %s; the batch will be redelivered", url)
                continue
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done[start : start + 10])
                    ],
                )

    def _route_rule(
        self, stack: Stack, logical: str, event_name: str, spec: dict[str, Any], handler: Handler
    ) -> None:
        """The template's rule on moto's bus, with an SQS queue as its target, drained into the function.

        Anything put on the bus (the Batch emulator, or `aws events put-events --endpoint-url ...`) is
        matched by moto against the rule's own pattern.
        """
        events, sqs = self._events, self._sqs
        rule = f"{stack.name}-{logical}-{event_name}"[:64]
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
        self._spawn(f"{logical}-{event_name}", self._poll_rule, handler, tap, dlq)

    def _poll_rule(self, handler: Handler, tap: str, dlq: str | None) -> None:
        """EventBridge invokes the function once per event, asynchronously, retrying a failure."""
        sqs = self._sqs
        while not self._stop.is_set():
            messages = self._receive(tap, MaxNumberOfMessages=10)
            if messages is None:
                return
            for message in messages:
                try:
                    self._invoke(handler, json.loads(message["Body"]))
                except Exception:
                    deliveries = int(message["Attributes"].get("ApproximateReceiveCount", "1"))
                    if deliveries < EVENT_DELIVERIES:
                        log.exception("event delivery %d failed; retrying", deliveries)
                        continue
                    log.exception("event failed %d times; kept in the DLQ", deliveries)
                    if dlq:
                        sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=tap, ReceiptHandle=message["ReceiptHandle"])

    def _interval(self, stack: Stack, spec: dict[str, Any]) -> float:
        if self.options.sweep_interval is not None:
            return self.options.sweep_interval
        schedule = str(stack.resolve(_first_branch(spec["Schedule"])))
        match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)", schedule)
        if not match:
            return 300.0
        unit = {"second": 1, "minute": 60, "hour": 3600}[match.group(2).rstrip("s")]
        return float(int(match.group(1)) * unit)

    def _schedule(self, handler: Handler, interval: float) -> None:
        while not self._stop.wait(interval):
            event = {
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
            try:
                self._invoke(handler, event)
            except Exception:
                log.exception("scheduled invocation failed")

    # -- REST API ------------------------------------------------------------------------------------------

    def _serve_api(self, stack: Stack) -> str:
        if self._api_handler is None:
            raise RuntimeError("template.yaml has no function with an Api event")
        handler: Handler = self._api_handler
        stack_ref = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._proxy()

            def do_POST(self) -> None:
                self._proxy()

            def do_PUT(self) -> None:
                self._proxy()

            def do_DELETE(self) -> None:
                self._proxy()

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="replace") if length else None
                event = api_gateway_event(self.command, self.path, dict(self.headers.items()), body)
                try:
                    response = stack_ref._invoke(handler, event)
                except Exception:
                    log.exception("API handler failed")
                    response = {"statusCode": 502, "body": json.dumps({"message": "Internal server error"})}
                payload = (response.get("body") or "").encode()
                self.send_response(int(response.get("statusCode", 200)))
                headers = {**(response.get("headers") or {})}
                for name, values in (response.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(values)
                headers.setdefault("Content-Type", "application/json")
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("api: " + format, *args)

        self._api = ThreadingHTTPServer((self.options.host, self.options.api_port), Request)
        self._spawn("api", self._api.serve_forever)
        port = self._api.server_address[1]
        return f"http://{self.options.host}:{port}"


def _first_branch(value: Any) -> Any:
    """A Fn::If picks a branch by a condition the local stack does not evaluate: take the else branch,
    the general one (e.g. rate(N minutes) over the rate(1 minute) special case)."""
    if isinstance(value, dict) and "Fn::If" in value:
        return value["Fn::If"][2]
    return value


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


def tenant_of(headers: dict[str, str]) -> str:
    """Locally, `Authorization: Tenant <name>` says who calls (SigV4 and IAM do it in AWS)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, name = value.partition(" ")
    return name.strip() if scheme.lower() == "tenant" and name.strip() else LOCAL_TENANT


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway with IAM auth would make it."""
    parts = urlsplit(raw_path)
    path = parts.path[3:] if parts.path.startswith("/v1/") else parts.path
    query = parse_qs(parts.query, keep_blank_values=True)
    tenant = tenant_of(headers)
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": ACCOUNT,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "accountId": ACCOUNT,
                "caller": f"AROALOCAL:{tenant}",
                "user": f"AROALOCAL:{tenant}",
                "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{tenant}/local",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }
