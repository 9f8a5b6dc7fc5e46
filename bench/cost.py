"""Dollars per million jobs, by AWS service, from the real handlers on in-process moto.

Three job shapes run through the production handlers on template.yaml's resources (bench/harness.py):

1. REST success: POST /jobs (API Gateway -> api) -> dispatcher -> state_change for RUNNABLE,
   STARTING, RUNNING and SUCCEEDED.
2. File-drop success: an S3 ObjectCreated notification through the ingest queue -> file_drop ->
   dispatcher -> the same four events.
3. Spot reclaim, then on-demand success: as 1 for a SPOT_FIRST job type (sort-large; word-count is
   ON_DEMAND_ONLY), attempt 1 ends with the Spot-interruption event, the retry is dispatched and
   attempt 2 runs RUNNABLE..SUCCEEDED on on-demand.

and the sweeper's cost of one job that stays RUNNING for an hour, swept every SweepIntervalMinutes
(the template's default) on a clock moved forward sweep by sweep.

Every AWS call the handlers make is priced with bench/pricing.py's rules from a botocore hook on
the handlers' own clients (before-parameter-build, after-call). For each DynamoDB write, the items
it touches are read before and after with a separate client that is not hooked, so each write's
WRU on the table and on each GSI come from the real item images. What the handlers do not call
themselves is added as AWS would bill it: API Gateway's request, Lambda's invocations (one per API
request, per SQS batch, per EventBridge event, per batch of stream records that pass a function's
FilterCriteria), the ReceiveMessage and DeleteMessageBatch that Lambda's SQS poller makes per batch,
S3's SendMessage of each notification. Every message and record comes in a batch of its own (a
quiet stack); the "batch 10" figures share the per-batch costs by ten. A function on the table's
stream (template.yaml's DynamoDB events) is run through batchplane_tools.local.streams after each
invocation, on moto's stream, as Lambda would run it; its reads of the stream are free.

Lambda duration is each invocation's wall time in this process, less the hooks' own time, billed
per started 1 ms at the function's MemorySize on arm64: an estimate. moto answers in-process in
about a millisecond where DynamoDB answers a Lambda in a few, and a 512 MB function has about 0.3
of a vCPU where this machine gives a whole core, so the two errors pull in opposite directions.

    python bench/cost.py [--repeat 3] [--running-jobs 100]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import sys
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from harness import ROOT, moto_stack, sqs_record
from pricing import (
    PRICES,
    PRICES_AS_OF,
    Table,
    WriteCost,
    failed_write_cost,
    item_size,
    payload_chunks,
    projected,
    read_units,
    table_from_properties,
    usd,
    write_cost,
)

from batchplane_tools.fixtures import load_event, post_job, s3_notification

ACCOUNT, REGION = "123456789012", "us-east-1"
SERVICES = ("dynamodb", "sqs", "s3", "sns", "events", "batch")
# The targets, $ per million jobs (the sweeper: per million job-hours).
TARGETS = {"rest": 15.0, "file_drop": 15.0, "spot": 30.0, "sweeper": 2.0}
# Lambda's own log records per invocation in JSON log format (platform.start and platform.report,
# with X-Ray fields), and API Gateway's access-log line in the template's format: estimated bytes.
PLATFORM_LOG_BYTES = 700
ACCESS_LOG_BYTES = 550
GIB = 1024**3

# The table rows, in this order: service -> the price keys it sums.
SERVICE_ROWS: dict[str, tuple[str, ...]] = {
    "API Gateway (REST)": ("apigw_rest",),
    "Lambda requests": ("lambda_request",),
    "Lambda duration": ("lambda_gb_second_arm64",),
    "DynamoDB writes": ("dynamodb_wru",),
    "DynamoDB reads": ("dynamodb_rru",),
    "SQS": ("sqs_request",),
    "S3": ("s3_put", "s3_get"),
    "EventBridge": ("eventbridge_event",),
    "SNS": ("sns_publish",),
    "Batch API": ("batch_api",),
}
EXTRA_ROWS: dict[str, tuple[str, ...]] = {"CloudWatch Logs (est.)": ("cloudwatch_logs_gb",)}


# -- what was billed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Charge:
    price: str  # a key of pricing.PRICES
    units: float
    step: str  # the invocation it belongs to, e.g. "state_change RUNNABLE #1"
    what: str  # the operation, e.g. "UpdateItem", "ReceiveMessage (Lambda poller)"
    target: str = ""  # DynamoDB writes: "table" or the index; reads: the table or index read
    item: str = ""  # DynamoDB: the item's kind, from its key ("JOB/JOB", "TENANT/INFLIGHT")
    size: int = 0  # DynamoDB writes: the larger of the item's sizes before and after, bytes
    per_batch: bool = False  # paid once per SQS or stream batch, so shared by the records of a full one


@dataclass(frozen=True)
class Write:
    """One item's write as DynamoDB saw it, kept to price it again under other index definitions."""

    table: str
    key: str  # the item's key, as JSON
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    transactional: bool
    ok: bool


@dataclass
class Ledger:
    charges: list[Charge] = field(default_factory=list)
    durations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # function -> ms
    writes: list[Write] = field(default_factory=list)
    logged: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # function -> bytes
    idle: list[str] = field(default_factory=list)  # the invocations that made no AWS call

    def add(self, charge: Charge) -> None:
        self.charges.append(charge)

    def units(self, price: str) -> float:
        return sum(c.units for c in self.charges if c.price == price)

    def usd(self, prices: tuple[str, ...], sqs_batch: int = 1) -> float:
        return sum(
            usd(c.price, c.units / (sqs_batch if c.per_batch else 1))
            for c in self.charges
            if c.price in prices
        )


def _item_kind(key: dict[str, Any]) -> str:
    """JOB/JOB, IDEM/IDEM, TENANT/INFLIGHT, OBJ/LATEST...: the first part of each key value."""
    parts = [str(next(iter(v.values()))).split("#", 1)[0] for v in key.values()]
    return "/".join(parts)


# -- the meter: every call the handlers make, priced -------------------------------------------------


class Meter:
    """Hooks the handlers' own clients; prices each call into the current ledger and step."""

    def __init__(self, session: Any, tables: dict[str, Table]) -> None:
        self._dynamodb = session.client("dynamodb")  # out of band: not hooked, not counted
        self._tables = tables
        self.ledger: Ledger | None = None
        self.step = ""
        self.overhead = 0.0  # seconds spent in the hooks since reset, taken off the invocation's time
        self._paused = 0

    def install(self) -> None:
        from batchplane.adapters.clients import client

        for service in SERVICES:
            events = client(service).meta.events
            events.register("before-parameter-build", self._before)
            events.register("after-call", self._after)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The bench's own use of the handlers' ports (reading a job to aim events at it)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    @property
    def _on(self) -> bool:
        return self.ledger is not None and not self._paused

    # DynamoDB items, read around each write.
    def _read(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._dynamodb.get_item(
            TableName=table, Key=key, ConsistentRead=True
        ).get("Item")
        return item

    def _write_targets(self, op: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], bool]]:
        """(action, table, key, transactional) of each item a write touches."""
        if op == "PutItem":
            return [(op, params["TableName"], self._key(params["TableName"], params["Item"]), False)]
        if op in ("UpdateItem", "DeleteItem"):
            return [(op, params["TableName"], params["Key"], False)]
        targets: list[tuple[str, str, dict[str, Any], bool]] = []
        if op == "TransactWriteItems":
            for entry in params["TransactItems"]:
                ((action, spec),) = entry.items()
                key = self._key(spec["TableName"], spec["Item"]) if action == "Put" else spec["Key"]
                targets.append((action, spec["TableName"], key, True))
        elif op == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        targets.append(("Put", table, self._key(table, request["PutRequest"]["Item"]), False))
                    else:
                        targets.append(("Delete", table, request["DeleteRequest"]["Key"], False))
        return targets

    def _key(self, table: str, item: dict[str, Any]) -> dict[str, Any]:
        return self._tables[table].key_of(item)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if not self._on:
            return
        started = time.perf_counter()
        pending: dict[str, Any] = {"params": params, "step": self.step}
        if model.service_model.service_name == "dynamodb" and model.name in (
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "TransactWriteItems",
            "BatchWriteItem",
        ):
            targets = self._write_targets(model.name, params)
            pending["targets"] = [(*t, self._read(t[1], t[2])) for t in targets]
        context["bench_cost"] = pending
        self.overhead += time.perf_counter() - started

    def _after(
        self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        pending = context.pop("bench_cost", None)
        if pending is None or self.ledger is None:
            return
        started = time.perf_counter()
        service, op = model.service_model.service_name, model.name
        ok = http_response.status_code < 300
        price = getattr(self, f"_price_{service}")
        for charge in price(op, pending["params"], parsed, ok, pending):
            self.ledger.add(charge)
        self.overhead += time.perf_counter() - started

    # One method per service: the charges of one call.
    def _price_dynamodb(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        step = pending["step"]
        if "targets" in pending:
            error = parsed.get("Error", {}).get("Code", "")
            charges = []
            for action, table, key, transactional, before in pending["targets"]:
                after = self._read(table, key) if ok else before
                cost: WriteCost
                if ok and action != "ConditionCheck":
                    cost = write_cost(before, after, self._tables[table], transactional=transactional)
                    what = op if op == action else f"{op} ({action})"
                elif ok or error in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                    # a failed condition, or a transaction's ConditionCheck: the existing item's size
                    cost = failed_write_cost(before, transactional=transactional)
                    what = f"{op} ({action})" if op != action else op
                    what += ", condition failed" if not ok else ""
                else:
                    continue  # throttled or invalid: not billed
                assert self.ledger is not None
                self.ledger.writes.append(
                    Write(
                        table,
                        json.dumps(key, sort_keys=True),
                        before,
                        after,
                        transactional,
                        ok and action != "ConditionCheck",
                    )
                )
                size = max(item_size(before), item_size(after))
                kind = _item_kind(key)
                charges.append(Charge("dynamodb_wru", cost.table, step, what, "table", kind, size))
                charges.extend(
                    Charge("dynamodb_wru", units, step, what, index, kind, size)
                    for index, units in cost.indexes.items()
                    if units
                )
            return charges
        if not ok:
            return []
        target = params.get("IndexName") or params.get("TableName", "")
        if op == "GetItem":
            item = parsed.get("Item")
            if "ProjectionExpression" in params and item is not None:  # billed on the whole item
                item = self._read(params["TableName"], params["Key"])
            units = read_units(item_size(item), consistent=bool(params.get("ConsistentRead")))
            return [Charge("dynamodb_rru", units, step, op, target, _item_kind(params["Key"]))]
        if op in ("Query", "Scan"):
            # Billed on the items read, before any FilterExpression (none on these paths); for an
            # index, on what it projects.
            size = sum(item_size(i) for i in parsed.get("Items", []))
            consistent = bool(params.get("ConsistentRead")) and "IndexName" not in params
            return [Charge("dynamodb_rru", read_units(size, consistent=consistent), step, op, target)]
        if op == "BatchGetItem":
            charges = []
            for table, items in parsed.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                charges.extend(
                    Charge("dynamodb_rru", read_units(item_size(i), consistent=consistent), step, op, table)
                    for i in items
                )
            return charges
        if op == "TransactGetItems":
            return [
                Charge("dynamodb_rru", 2 * read_units(item_size(r.get("Item")), consistent=True), step, op)
                for r in parsed.get("Responses", [])
            ]
        return []  # DescribeTable and the like: free

    @staticmethod
    def _attributes_size(attributes: dict[str, Any]) -> int:
        size = 0
        for name, value in attributes.items():
            size += len(name.encode()) + len(value.get("DataType", "").encode())
            size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b""))
        return size

    def _price_sqs(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        if op == "SendMessage":
            size = len(params["MessageBody"].encode()) + self._attributes_size(
                params.get("MessageAttributes", {})
            )
            units = payload_chunks(size)
        elif op == "SendMessageBatch":
            size = sum(
                len(e["MessageBody"].encode()) + self._attributes_size(e.get("MessageAttributes", {}))
                for e in params["Entries"]
            )
            units = payload_chunks(size)
        else:
            units = 1
        return [Charge("sqs_request", units, pending["step"], op)]

    def _price_sns(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        size = len(params.get("Message", "").encode()) + len(params.get("Subject", "").encode())
        size += self._attributes_size(params.get("MessageAttributes", {}))
        return [Charge("sns_publish", payload_chunks(size), pending["step"], op)]

    def _price_events(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        if op != "PutEvents":
            return []
        # An entry's size as EventBridge counts it: Source, DetailType, Detail, Resources, Time.
        units = sum(
            payload_chunks(
                sum(len(e.get(k, "").encode()) for k in ("Source", "DetailType", "Detail"))
                + sum(len(r.encode()) for r in e.get("Resources", []))
                + (14 if "Time" in e else 0)
            )
            for e in params["Entries"]
        )
        return [Charge("eventbridge_event", units, pending["step"], op)]

    def _price_s3(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        if op.startswith("Delete"):
            return []  # DELETE requests are free
        tier = "s3_get" if op.startswith(("Get", "Head")) else "s3_put"  # PUT, COPY, POST, LIST
        return [Charge(tier, 1, pending["step"], op)]

    def _price_batch(
        self, op: str, params: dict[str, Any], parsed: dict[str, Any], ok: bool, pending: dict[str, Any]
    ) -> list[Charge]:
        return [Charge("batch_api", 1, pending["step"], op)]


# -- stdout: the functions' log lines, counted, not shown ---------------------------------------------


class LogTap(io.TextIOBase):
    """Stands in for sys.stdout from the start, so Powertools' Logger (which keeps the stream it was
    made with) and its EMF metrics write here: counted while a handler runs, passed through else."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.capturing = False
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> int:
        if not self.capturing:
            return int(self.real.write(text))
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        self.real.flush()


# -- running the functions as their triggers would -----------------------------------------------------


class Runner:
    def __init__(self, session: Any, stack: Any, meter: Meter, tap: LogTap) -> None:
        from batchplane_tools.local.template import load_template

        self.session, self.stack, self.meter, self.tap = session, stack, meter, tap
        self.sqs = session.client("sqs")  # the bench's own (Lambda's poller): not hooked
        self.s3 = session.client("s3")
        template = load_template(ROOT / "template.yaml")
        self.memory = function_memory(template)
        self.sweep_minutes = int(template["Parameters"]["SweepIntervalMinutes"]["Default"])
        self.env = stack.function_environment()
        self.paced_ms = 0.0
        self.stream_step = ""
        self.streams = stream_mappings(self, session, stack, template)

    def invoke(self, function: str, event: dict[str, Any], step: str, trigger: str) -> Any:
        from batchplane_tools.functions import LambdaContext, load_function

        ledger = self.meter.ledger
        assert ledger is not None
        handler = load_function(function).handler
        memory = self.memory[function]
        context = LambdaContext(
            function_name=f"batchplane-prod-{function}-Zx81Qw2Er3Ty",
            memory_limit_in_mb=memory,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:batchplane-prod-{function}-Zx81Qw2Er3Ty",
            aws_request_id=str(uuid.uuid4()),
        )
        self.meter.step, self.meter.overhead = step, 0.0
        self.tap.capturing, self.tap.bytes = True, 0
        calls_before = len(ledger.charges)
        try:
            started = time.perf_counter()
            result = handler(event, context)
            seconds = time.perf_counter() - started - self.meter.overhead
        finally:
            self.tap.capturing = False
        billed_ms = max(1, math.ceil(seconds * 1000))
        ledger.durations[function].append(seconds * 1000)
        ledger.logged[function].append(self.tap.bytes)
        if len(ledger.charges) == calls_before:  # it made no AWS call at all
            ledger.idle.append(step)
        per_batch = trigger in ("sqs", "stream")
        ledger.add(Charge("lambda_request", 1, step, f"{function} invocation", per_batch=per_batch))
        ledger.add(Charge("lambda_gb_second_arm64", memory / 1024 * billed_ms / 1000, step, function))
        logged = self.tap.bytes + PLATFORM_LOG_BYTES + (ACCESS_LOG_BYTES if trigger == "api" else 0)
        ledger.add(Charge("cloudwatch_logs_gb", logged / GIB, step, f"{function} logs"))
        if trigger == "api":
            ledger.add(Charge("apigw_rest", 1, step, "request"))
        if trigger == "sqs":  # Lambda's poller: one receive and one batch delete per batch
            ledger.add(Charge("sqs_request", 1, step, "ReceiveMessage (Lambda poller)", per_batch=True))
            ledger.add(Charge("sqs_request", 1, step, "DeleteMessageBatch (Lambda poller)", per_batch=True))
        if trigger != "stream":
            self._drain_streams(step)
        return result

    def _drain_streams(self, after: str) -> None:
        """Lambda's stream pollers: what the writes just made owe the functions on the table's stream
        (its reads are free; each batch of records that pass the filter is one invocation)."""
        for function, mapping in self.streams:
            self.stream_step = f"{function} (stream, after {after})"
            mapping.drain()

    def job(self, job_id: str) -> Any:
        from batchplane.wiring import ports

        with self.meter.paused():
            job = ports().store.get(job_id)
        assert job is not None, job_id
        return job

    # The three entry points.
    def post_job(self, n: int, job_type: str | None = None) -> str:
        event = post_job(ingest_bucket=self.env["INGEST_BUCKET"])
        key = f"bench-cost-{n}-{uuid.uuid4().hex[:8]}"
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
        if job_type is not None:
            body = json.loads(event["body"])
            body["job_type"] = job_type
            event["body"] = json.dumps(body)
            length = str(len(event["body"].encode()))
            event["headers"]["Content-Length"] = length
            event["multiValueHeaders"]["Content-Length"] = [length]
        response = self.invoke("api", event, "api POST /jobs", trigger="api")
        assert response["statusCode"] == 202, response
        return str(json.loads(response["body"])["job_id"])

    def drop_file(self, n: int) -> None:
        # A new object each time (the common case): the fixture's key with a number, its own sequencer.
        key = f"incoming/analytics/word-count/red+flower%C3%89+notes-{n}.txt"
        notification = s3_notification(bucket=self.env["INGEST_BUCKET"], key=key, sequencer=f"{n + 1:018X}")
        body = json.dumps(notification)
        ledger = self.meter.ledger
        assert ledger is not None
        ledger.add(
            Charge(
                "sqs_request",
                payload_chunks(len(body.encode())),
                "file_drop",
                "SendMessage (S3 notification)",
            )
        )
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.stack.refs['IngestQueue'].rsplit('/', 1)[-1]}"
        record = sqs_record(body, source_arn=queue_arn, message_id=str(uuid.uuid4()))
        result = self.invoke("file_drop", {"Records": [record]}, "file_drop", trigger="sqs")
        assert result == {"batchItemFailures": []}, result

    def dispatch_next(self, step: str) -> str:
        """Lambda's poller: the one dispatch message waiting, delivered as a batch of one."""
        url = self.stack.refs["DispatchQueue"]
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        assert len(messages) == 1, f"expected one dispatch message, found {len(messages)}"
        [message] = messages
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rsplit('/', 1)[-1]}"
        record = sqs_record(message["Body"], source_arn=arn, message_id=message["MessageId"])
        result = self.invoke("dispatcher", {"Records": [record]}, step, trigger="sqs")
        assert result == {"batchItemFailures": []}, result
        return str(json.loads(message["Body"])["job_id"])

    def event(self, fixture: str, job: Any, expect: str) -> None:
        """A Batch Job State Change from events/batch/, aimed at the job's current attempt."""
        attempt = job.attempts[-1]
        event = load_event(f"batch/{fixture}.json")
        arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{attempt.batch_job_id}"
        event["detail"].update(
            jobId=attempt.batch_job_id, jobArn=arn, jobName=attempt.job_name, jobQueue=attempt.queue
        )
        event["detail"]["tags"] = {
            "resourceArn": arn,
            "bp:job_id": job.job_id,
            "bp:attempt": str(attempt.number),
            "bp:tenant": job.tenant,
            "bp:job_type": job.job_type,
        }
        event["resources"] = [arn]
        step = f"state_change {event['detail']['status']} #{attempt.number}"
        result = self.invoke("state_change", event, step, trigger="eventbridge")
        assert result["outcome"] == expect, (fixture, result)

    def attempt(self, job_id: str, end: str = "succeeded") -> None:
        job = self.job(job_id)
        for status in ("runnable", "starting", "running"):
            self.event(status, job, expect="progressed")
        if end == "succeeded":
            # What the worker wrote (word-count's counts.json): the success path lists and records it.
            bucket, _, prefix = job.output_prefix.removeprefix("s3://").partition("/")
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}counts.json", Body=b'{"lines": 2, "words": 10}')
            self.event("succeeded", job, expect="succeeded")
        else:
            self.event(end, job, expect="retrying")

    def sweep(self, step: str) -> dict[str, Any]:
        result: dict[str, Any] = self.invoke(
            "sweeper", load_event("schedule/sweep.json"), step, trigger="schedule"
        )
        return result


def stream_mappings(run: Runner, session: Any, stack: Any, template: dict[str, Any]) -> list[tuple[str, Any]]:
    """The functions on a DynamoDB stream (template.yaml's DynamoDB events), each with Lambda's event
    source mapping as the local stack emulates it; none when the template or the tooling has none."""
    try:
        from batchplane_tools.local.streams import StreamMapping
    except ImportError:
        return []
    # Lambda's reads of the stream: free, and not hooked. (The endpoint given: botocore's endpoint rules
    # otherwise pick one that in-process moto does not serve.)
    streams = session.client(
        "dynamodbstreams", endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com"
    )
    mappings = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        function = str(resource["Properties"]["CodeUri"]).rsplit("/", 1)[-1]
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] != "DynamoDB":
                continue
            spec = event["Properties"]

            def invoke(records: dict[str, Any], function: str = function) -> Any:
                return run.invoke(function, records, run.stream_step, trigger="stream")

            arn = stack.resolve(spec["Stream"])
            mappings.append(
                (function, StreamMapping.of_event(spec, streams=streams, stream_arn=arn, invoke=invoke))
            )
    return mappings


def function_memory(template: dict[str, Any]) -> dict[str, int]:
    """Each function's MemorySize (its own, else the Globals'), by its directory under functions/."""
    default = int(template.get("Globals", {}).get("Function", {}).get("MemorySize", 128))
    memory = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            props = resource["Properties"]
            memory[str(props["CodeUri"]).rsplit("/", 1)[-1]] = int(props.get("MemorySize", default))
    return memory


# -- the shapes ---------------------------------------------------------------------------------------


def rest_success(run: Runner, n: int) -> None:
    job_id = run.post_job(n)
    run.dispatch_next("dispatcher #1")
    run.attempt(job_id)


def file_drop_success(run: Runner, n: int) -> None:
    run.drop_file(n)
    job_id = run.dispatch_next("dispatcher #1")
    run.attempt(job_id)


def spot_then_on_demand(run: Runner, n: int) -> None:
    job_id = run.post_job(n, job_type="sort-large")
    run.dispatch_next("dispatcher #1")
    run.attempt(job_id, end="spot_interrupted")
    run.dispatch_next("dispatcher #2")
    assert run.job(job_id).attempts[-1].capacity.value == "ON_DEMAND"
    run.attempt(job_id)


SHAPES = {
    "rest": ("REST success: POST /jobs -> SUCCEEDED", rest_success),
    "file_drop": ("File-drop success: S3 ObjectCreated -> SUCCEEDED", file_drop_success),
    "spot": ("Spot reclaim on attempt 1, on-demand success on attempt 2 (sort-large)", spot_then_on_demand),
}


def measure(run: Runner, shape: str, repeat: int, counter: Iterator[int]) -> tuple[Ledger, list[Ledger]]:
    """One warm-up run (cold clients and models; not counted), then `repeat` runs: all of them in one
    ledger, and each in its own (to see that they agree)."""
    _, play = SHAPES[shape]
    run.meter.ledger = Ledger()
    play(run, next(counter))
    merged, runs = Ledger(), []
    for _ in range(repeat):
        run.meter.ledger = Ledger()
        play(run, next(counter))
        runs.append(run.meter.ledger)
        merged.charges += run.meter.ledger.charges
        merged.writes += run.meter.ledger.writes
        merged.idle += run.meter.ledger.idle
        for function, values in run.meter.ledger.durations.items():
            merged.durations[function] += values
        for function, sizes in run.meter.ledger.logged.items():
            merged.logged[function] += sizes
    run.meter.ledger = None
    return merged, runs


def running_jobs(run: Runner, count: int, counter: Iterator[int]) -> list[str]:
    """`count` jobs left RUNNING, in batchplane and in moto's Batch (which would finish them at once)."""
    from moto.batch.models import batch_backends
    from moto.moto_api import state_manager

    run.meter.ledger = Ledger()  # the setup's calls: priced and dropped
    ids = []
    for _ in range(count):
        job_id = run.post_job(next(counter))
        run.dispatch_next("dispatcher #1")
        job = run.job(job_id)
        for status in ("runnable", "starting", "running"):
            run.event(status, job, expect="progressed")
        ids.append(job_id)
    run.meter.ledger = None
    # moto's simple Batch marks a job SUCCEEDED as it is submitted: put each back to RUNNING, and
    # keep moto from moving it on when it is described.
    state_manager.set_transition(
        model_name="batch::job", transition={"progression": "manual", "times": 10**9}
    )
    backend = batch_backends[ACCOUNT][REGION]
    for job_id in ids:
        moto_job = backend._jobs[run.job(job_id).attempts[-1].batch_job_id]
        moto_job.status = "RUNNING"
        moto_job.job_stopped, moto_job.job_stopped_reason, moto_job.exit_code = False, None, None
        moto_job.attempts, moto_job.latest_attempt = [], None
    return ids


def stopped_at(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def sweeper_hour(run: Runner) -> tuple[Ledger, list[int]]:
    """An hour of sweeps, each on a clock SweepIntervalMinutes later than the one before."""
    from batchplane.wiring import ports

    p = ports()
    real_clock = p.clock
    start = real_clock()
    ledger = Ledger()
    run.meter.ledger = ledger
    checked = []
    try:
        for k in range(1, 60 // run.sweep_minutes + 1):
            p.clock = stopped_at(start + timedelta(minutes=run.sweep_minutes * k))
            checked.append(int(run.sweep("sweeper")["checked"]))
    finally:
        p.clock = real_clock
        run.meter.ledger = None
    return ledger, checked


# -- the report ----------------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{round(value, 6) + 0.0:g}"  # (+ 0.0: no "-0")


def _describe(ledger: Ledger, prices: tuple[str, ...], jobs: float) -> str:
    """What one job used of a service, in that service's units."""
    per: dict[str, float] = defaultdict(float)
    for c in ledger.charges:
        if c.price in prices:
            per[c.what] += c.units / jobs
    per = {what: n for what, n in per.items() if round(n, 6)}
    total = sum(per.values())
    if prices == ("lambda_request",):
        parts = ", ".join(f"{what.split()[0]} {_n(n)}" for what, n in per.items())
        return f"{_n(total)} invocations: {parts}" if parts else "-"
    if prices == ("lambda_gb_second_arm64",):
        ms = sum(sum(v) for v in ledger.durations.values()) / jobs
        return f"{total:.4f} GB-s: {ms:.0f} ms of handler time (in-process estimate)"
    if prices == ("dynamodb_wru",):
        return f"{_n(total)} WRU (by write below)"
    if prices == ("dynamodb_rru",):
        return f"{_n(total)} RRU" + (": " + ", ".join(f"{w} {_n(n)}" for w, n in per.items()) if per else "")
    if prices == ("cloudwatch_logs_gb",):
        return f"{total * GIB / 1024:.1f} KB: handlers' lines and EMF + Lambda's platform lines + access log"
    if prices == ("batch_api",) and per:
        return ", ".join(f"{what} {_n(n)}" for what, n in per.items()) + " (free)"
    return ", ".join(f"{what} {_n(n)}" for what, n in per.items()) or "-"


@dataclass(frozen=True)
class Totals:
    scope: float  # the services
    logs: float
    full_batches: float  # scope, with SQS batches of 10

    @property
    def all_in(self) -> float:
        return self.scope + self.logs


def print_table(ledger: Ledger, jobs: float, target: float, unit: str) -> Totals:
    print(f"  {'service':<24}{'$ per M':>9}   used per {unit}")
    for service, prices in {**SERVICE_ROWS, **EXTRA_ROWS}.items():
        dollars = ledger.usd(prices) / jobs * 1e6
        print(f"  {service:<24}{dollars:9.2f}   {_describe(ledger, prices, jobs)}")
        if service == "Batch API":
            scope = sum(ledger.usd(p) for p in SERVICE_ROWS.values()) / jobs * 1e6
            verdict = "PASS" if scope <= target else "MISS"
            print(f"  {'total':<24}{scope:9.2f}   target <= {target:.2f}: {verdict}")
    logs = sum(ledger.usd(p) for p in EXTRA_ROWS.values()) / jobs * 1e6
    full = sum(ledger.usd(p, sqs_batch=10) for p in SERVICE_ROWS.values()) / jobs * 1e6
    totals = Totals(scope, logs, full)
    verdict = "PASS" if totals.all_in <= target else "MISS"
    print(f"  {'total with logs':<24}{totals.all_in:9.2f}   target <= {target:.2f}: {verdict}")
    if abs(full - scope) > 0.005:
        print(
            f"  {'total, batches of 10':<24}{full:9.2f}   "
            "(SQS and stream batches of 10: their invocations and poller requests shared)"
        )
    return totals


def print_wru(ledger: Ledger, jobs: float, indexes: list[str]) -> None:
    rows: dict[tuple[str, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    sizes: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for c in ledger.charges:
        if c.price == "dynamodb_wru":
            key = (c.step, c.what, c.item)
            rows[key][c.target] += c.units / jobs
            if c.target == "table":
                sizes[key].append(c.size)
    if not rows:
        return
    columns = ["table", *indexes, "total"]
    labels = {key: f"{key[0]}: {key[1]} {key[2]}" for key in rows}
    width = max(len(label) for label in labels.values()) + 2
    print("  DynamoDB WRU per job, by write (item KB: the larger of before and after)")
    print(f"    {'write':<{width}}{'item KB':>8}" + "".join(f"{c:>{len(c) + 2}}" for c in columns))
    totals: dict[str, float] = defaultdict(float)
    for key, units in rows.items():
        units["total"] = sum(units.values())
        for column, n in units.items():
            totals[column] += n
        kb = statistics.fmean(sizes[key]) / 1024 if sizes[key] else 0.0
        cells = "".join(f"{_n(units.get(c, 0)):>{len(c) + 2}}" for c in columns)
        print(f"    {labels[key]:<{width}}{kb:8.2f}{cells}")
    cells = "".join(f"{_n(totals.get(c, 0)):>{len(c) + 2}}" for c in columns)
    print(f"    {'total':<{width}}{'':8}{cells}")


def print_reads(ledger: Ledger, jobs: float) -> None:
    reads: dict[str, float] = defaultdict(float)
    for c in ledger.charges:
        if c.price == "dynamodb_rru":
            reads[f"{c.step}: {c.what} {c.item or c.target}"] += c.units / jobs
    if any(round(n, 6) for n in reads.values()):
        print(
            "  DynamoDB RRU per job: "
            + ", ".join(f"{what} {_n(n)}" for what, n in reads.items() if round(n, 6))
        )


def print_consistency(runs: list[Ledger]) -> None:
    """Do the runs agree on everything but time? (Each run's units per price, durations left out.)"""
    timed = ("lambda_gb_second_arm64", "cloudwatch_logs_gb")
    seen = [
        {price: round(r.units(price), 6) for price in PRICES if price not in timed and r.units(price)}
        for r in runs
    ]
    if all(s == seen[0] for s in seen):
        print(
            f"  every count above is the same in each of the {len(runs)} runs (only the handler time varies)"
        )
    else:
        print(f"  the runs differ: {seen}")


def what_if_keys_only(ledger: Ledger, tables: dict[str, Table], jobs: float) -> None:
    """The same writes, priced as if every index projected KEYS_ONLY."""
    now = then = 0.0
    for w in ledger.writes:
        table = tables[w.table]
        lean = Table(
            table.hash_key, table.range_key, tuple(replace(i, projection="KEYS_ONLY") for i in table.indexes)
        )
        if w.ok:
            now += write_cost(w.before, w.after, table, transactional=w.transactional).total
            then += write_cost(w.before, w.after, lean, transactional=w.transactional).total
        else:
            failed = failed_write_cost(w.before, transactional=w.transactional).total
            now, then = now + failed, then + failed
    if now:
        print(
            f"  what if every GSI projected KEYS_ONLY (the same writes): {_n(then / jobs)} WRU instead of "
            f"{_n(now / jobs)}, ${usd('dynamodb_wru', then / jobs) * 1e6:.2f} instead of "
            f"${usd('dynamodb_wru', now / jobs) * 1e6:.2f} per million (listings would then read each job)"
        )


def print_storage(ledger: Ledger, tables: dict[str, Table], jobs: float) -> None:
    """What the job leaves in the table and its indexes, and what keeping it costs a month."""
    final: dict[tuple[str, str], dict[str, Any] | None] = {}
    for w in ledger.writes:
        if w.ok:
            final[(w.table, w.key)] = w.after
    items = [(table, item) for (table, _), item in final.items() if item is not None]
    if not items:
        return
    in_table = sum(item_size(item) + 100 for _, item in items)
    in_indexes = 0
    for table, item in items:
        for index in tables[table].indexes:
            entry = projected(item, index, tables[table])
            in_indexes += item_size(entry) + 100 if entry is not None else 0
    per_job = (in_table + in_indexes) / jobs
    monthly = usd("dynamodb_storage_gb_month", per_job * 1e6 / GIB) + usd(
        "dynamodb_pitr_gb_month", in_table / jobs * 1e6 / GIB
    )
    print(
        f"  kept after the job: {len(items) / jobs:.1f} items, {in_table / jobs / 1024:.1f} KB in the table "
        f"+ {in_indexes / jobs / 1024:.1f} KB in GSIs (100 B overhead each): ${monthly:.2f} per million "
        "jobs per month kept (storage + PITR)"
    )


def print_durations(ledger: Ledger, jobs: float) -> None:
    parts = [f"{f} {statistics.median(v):.1f}" for f, v in sorted(ledger.durations.items())]
    print(f"  Lambda handler time per invocation, median ms (in-process, hooks excluded): {', '.join(parts)}")
    parts = [f"{f} {statistics.fmean(v):.0f}" for f, v in sorted(ledger.logged.items())]
    print(
        f"  log bytes per invocation from the handler (+ ~{PLATFORM_LOG_BYTES} from Lambda, "
        f"+ ~{ACCESS_LOG_BYTES} API access log): {', '.join(parts)}"
    )
    if ledger.idle:
        steps = ", ".join(dict.fromkeys(ledger.idle))
        print(f"  invocations that made no AWS call: {len(ledger.idle) / jobs:g} a job ({steps})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each shape after its warm-up")
    parser.add_argument("--running-jobs", type=int, default=100, help="RUNNING jobs during the swept hour")
    args = parser.parse_args()

    out = sys.stdout
    tap = LogTap(out)
    sys.stdout = tap  # before batchplane's Logger is made: it keeps the stream it finds
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    counter = iter(range(1_000_000))
    try:
        with moto_stack() as (session, stack):
            # EMF metrics are log lines too, and billed as such: print them (into the tap), as Lambda does.
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"
            from batchplane.wiring import ports

            table_properties = stack.template["Resources"]["JobsTable"]["Properties"]
            jobs_table = table_from_properties(table_properties)
            tables = {stack.refs["JobsTable"]: jobs_table}
            meter = Meter(session, tables)
            meter.install()
            run = Runner(session, stack, meter, tap)
            # The dispatcher paces SubmitJob by sleeping (SubmitRatePerSecond); one job at a time
            # never waits in Lambda, so the bench's back-to-back jobs must not either.
            limiter = ports().batch._limiter  # type: ignore[attr-defined]
            limiter._sleep = lambda seconds: setattr(run, "paced_ms", run.paced_ms + seconds * 1000)

            ledgers = {shape: measure(run, shape, args.repeat, counter) for shape in SHAPES}
            idle, _ = sweeper_hour(run)  # every job so far has finished: the sweeps' fixed cost
            ids = running_jobs(run, args.running_jobs, counter)
            busy, checked = sweeper_hour(run)
            assert len(ids) == args.running_jobs
    finally:
        sys.stdout = out

    from batchplane.adapters.job_index import ACTIVITY_SHARDS

    indexes = [i.name for i in jobs_table.indexes]
    print(
        "batchplane: $ per million jobs by AWS service, real handlers on in-process moto "
        f"({args.repeat} runs a shape)"
    )
    print(f"prices: {PRICES_AS_OF}")
    for key, price in PRICES.items():
        print(f"  {key:<26}${price.usd:<13g}per {price.per:>9,} {price.unit:<52} {price.source}")
    summary: list[tuple[str, Totals, float]] = []
    for shape, (ledger, runs) in ledgers.items():
        title, _ = SHAPES[shape]
        print(f"\n{title}: $ per million jobs")
        totals = print_table(ledger, args.repeat, TARGETS[shape], "job")
        summary.append((title, totals, TARGETS[shape]))
        requests = ledger.units("apigw_rest") / args.repeat
        if requests:
            http = totals.scope + (usd("apigw_http", requests) - usd("apigw_rest", requests)) * 1e6
            print(f"  {'total with an HTTP API':<24}{http:9.2f}   (HTTP APIs take IAM auth too)")
        print_wru(ledger, args.repeat, indexes)
        what_if_keys_only(ledger, tables, args.repeat)
        print_reads(ledger, args.repeat)
        print_storage(ledger, tables, args.repeat)
        print_durations(ledger, args.repeat)
        print_consistency(runs)

    # The sweeper: what N running jobs add to an hour of sweeps, per job.
    n = args.running_jobs
    marginal = Ledger()
    marginal.charges = busy.charges + [
        Charge(c.price, -c.units, c.step, c.what, c.target, c.item, c.size, c.per_batch) for c in idle.charges
    ]
    for function, values in busy.durations.items():
        marginal.durations[function] = [sum(values) - sum(idle.durations.get(function, []))]
    checks = sum(1 for c in checked if c)
    title = "A job RUNNING for an hour, in the sweeper"
    print(f"\n{title}: $ per million job-hours (what {n} running jobs add to an hour of sweeps, per job)")
    print(
        f"  a sweep every {run.sweep_minutes} min (template default), on a clock moved forward that much "
        f"each time; jobs checked per sweep: {checked}: each job {checks}x an hour"
    )
    summary.append(
        (title + " (per M job-hours)", print_table(marginal, n, TARGETS["sweeper"], "job-hour"), 2.0)
    )
    print_wru(busy, n, indexes)
    print_reads(marginal, n)
    fixed = sum(idle.usd(p) for p in SERVICE_ROWS.values())
    print(
        f"  fixed cost of sweeping with nothing to check: {len(checked)} sweeps an hour (Lambda, "
        f"{ACTIVITY_SHARDS} Queries, the cursor's GetItem and the two queue fronts each)"
        f" = ${fixed * 730:.2f} a month"
    )

    print("\nSummary, $ per million jobs (the sweeper: per million job-hours)")
    print(f"  {'':<72}{'total':>8}{'target':>8}{'':>6}{'+ logs':>8}{'batch 10':>9}")
    for title, totals, target in summary:
        verdict = "PASS" if totals.scope <= target else "MISS"
        figures = (
            f"{totals.scope:8.2f}{target:8.2f}{verdict:>6}{totals.all_in:8.2f}{totals.full_batches:9.2f}"
        )
        print(f"  {title:<72}{figures}")

    sfn = PRICES["stepfunctions_transition"].usd
    print(
        "\nFor comparison, Step Functions Standard at $25 per million state transitions, "
        "for the orchestration alone:"
    )
    print(
        f"  minimal submit-and-record workflow (SubmitJob .sync -> record -> end), 2-3 transitions: "
        f"${2 * sfn:.0f}-{3 * sfn:.0f} per million jobs"
    )
    print(f"  with one Spot catch and retry, ~7 transitions: ~${7 * sfn:.0f} per million jobs")
    rest, _ = ledgers["rest"]
    invocations = rest.units("lambda_request") / args.repeat
    traces = invocations - 1  # the API request and its function are one trace
    print("\nNot in the totals:")
    print(
        f"  X-Ray (Tracing: Active on every function and the API): ~{traces:g} traces a REST job; at the "
        f"default sampling (1 a second, then 5%) ${usd('xray_trace', traces * 0.05) * 1e6:.2f} per million "
        "jobs, plus the 1-a-second reservoir: up to 2.6M traces, ~$13, a month past the free 100,000"
    )
    print(
        "  fixed: SQS pollers' empty long polls (a few per minute per queue), the sweeps above, CloudWatch "
        "custom metrics and alarms, KMS keys: per month, not per job"
    )
    print(
        "  the input upload (a client's S3 PUT, $5.00 per million) and the workers' own S3 calls: the "
        "job's, not batchplane's"
    )
    if run.paced_ms:
        print(
            f"  the dispatcher's SubmitJob pacing asked to sleep {run.paced_ms:.0f} ms in all over the "
            "bench's back-to-back jobs: not slept, not billed (a job arriving alone never waits; under a "
            "sustained load each SubmitJob waits 1/SubmitRatePerSecond in Lambda)"
        )


if __name__ == "__main__":
    main()
