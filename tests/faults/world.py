"""The world around the handlers, as AWS runs it, for the fault harness.

Every trigger is delivered the way its AWS service delivers it, including what it does when the
function fails or dies:

- SQS (ingest, dispatch): a message stays on its queue until the function succeeds with it; a failed
  invocation, or a record reported in `batchItemFailures`, comes back after its visibility timeout,
  received once more, and after `maxReceiveCount` receives SQS moves it to the DLQ (moto does);
- EventBridge to Lambda (Batch state changes, outputs): an asynchronous invocation, tried again twice
  by Lambda (EventInvokeConfig), then the event goes to the function's DLQ;
- the jobs table's stream to the outbox (tooling's StreamMapping): a failed batch is delivered again
  from its failed record, bisected, and after MaximumRetryAttempts described in OutboxDLQ;
- the API's client sends a request again after a 5xx (502 when the function died), with the same
  Idempotency-Key;
- the sweeper runs on its schedule; a failed sweep is dropped and the next one runs. Each sweep moves
  the handlers' clock past StaleAfterSeconds.

`settle` delivers everything until the world is quiet. A function that dies is modelled by `Crash`
(tests/faults/injector.py) leaving the handler; the next delivery runs in the same process, which keeps
nothing a delivery depends on (clients and settings only).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from batchplane.adapters.store import DynamoJobStore
from batchplane.models.job import JobStatus
from batchplane.models.time import utc_now
from batchplane.observability import logger as runtime_logger
from batchplane.wiring import ports
from batchplane_tools.local.streams import filter_patterns, passes
from tests.conftest import AwsStack
from tests.faults.injector import Crash
from tests.support import LambdaContext, api_event, load_event, load_function, sqs_event, watch_queues

CLIENT_TRIES = 4  # a client sends a request that answered 5xx again, three times
ASYNC_TRIES = 3  # an asynchronous invocation and Lambda's two retries (template: EventInvokeConfig)
SQS_ROUNDS = 12  # more than maxReceiveCount (5): a message is settled or dead-lettered by then
PUMP_ROUNDS = 20
SETTLE_ROUNDS = 6
# Each DLQ and the function whose failed triggers it keeps.
DLQS = {
    "IngestDLQ": "file_drop",
    "DispatchDLQ": "dispatcher",
    "StateChangeDLQ": "state_change",
    "OutputsDLQ": "artifacts",
    "OutboxDLQ": "outbox",
}


class _Lines(logging.Handler):
    """What the functions log at WARNING and above, with tracebacks (why a record failed), each line
    under the function that wrote it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.function = ""
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        # A failed record's reason travels as a structured field (failed_records/), not in the message.
        reason = getattr(record, "reason", None)
        self.lines.append(f"{self.function}: {self.format(record)}" + (f" reason={reason}" if reason else ""))


@dataclass
class Settled:
    quiet: bool
    sweeps_that_worked: int  # sweeps that changed something: what redelivery alone left undone


@dataclass
class World:
    aws: AwsStack
    offset: timedelta = timedelta(0)
    owed: set[str] = field(default_factory=set)  # every event id a write of a job item added to its outbox
    written: set[tuple[str, str]] = field(default_factory=set)  # the keys this run wrote
    seen: set[str] = field(default_factory=set)  # the stream records read, by sequence number
    forgotten: set[str] = field(default_factory=set)  # Batch jobs Batch no longer knows
    published: list[tuple[str, str, str]] = field(default_factory=list)  # (event_id, kind, subject)
    client_gave_up: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sqs = self.aws.client("sqs")
        self.dynamodb = self.aws.client("dynamodb")
        self.batch = self.aws.client("batch")
        self.table = self.aws.env["JOBS_TABLE_NAME"]
        # The books read with the test's own client: nothing the harness reads is counted or faulted.
        self.store = DynamoJobStore(self.table, self.dynamodb)
        self.refs = self.aws.stack.refs
        ports().clock = lambda: utc_now() + self.offset
        # One reader of the table's stream: it sees every write (what changed, what was owed), and hands
        # the outbox function the records its FilterCriteria pass, as Lambda would.
        self.stream = self.aws.outbox_mapping(self._on_stream, filtered=False)
        self.patterns = filter_patterns(self.aws.outbox_spec())
        self.alerts_url, self.events_url = watch_queues(
            self.aws.session,
            topic_arn=self.aws.env["ALERT_TOPIC_ARN"],
            bus=self.aws.env["EVENT_BUS_NAME"],
            name="faults",
        )
        # Thousands of runs: the functions' INFO lines would cost more than the runs; WARNING and
        # above (why a record failed) are kept.
        self._log = _Lines()
        self._logger = logging.getLogger(runtime_logger.name)
        self._level = self._logger.level
        self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self._log)

    def close(self) -> None:
        self._logger.removeHandler(self._log)
        self._logger.setLevel(self._level)

    @property
    def log_lines(self) -> list[str]:
        return self._log.lines

    # -- the functions, as Lambda invokes them ----------------------------------------------------------

    def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        """One invocation; an error or a crash is logged as the Lambda runtime logs it, and raised."""
        self._log.function = function
        try:
            return load_function(function).handler(event, LambdaContext(function_name=function))
        except Crash as crash:
            self.log_lines.append(f"{function}: RUNTIME Runtime.ExitError ({crash})")
            raise
        except Exception as error:
            self.log_lines.append(f"{function}: ERROR {type(error).__name__}: {error}")
            raise

    def call_api(
        self,
        method: str,
        path: str,
        *,
        tenant: str,
        resource: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A client's request, sent again (the same request) while it answers 5xx."""
        event = api_event(method, path, body=body, headers=headers, tenant=tenant, resource=resource)
        status, answer = 0, None
        for _ in range(CLIENT_TRIES):
            try:
                response = self._invoke("api", event)
            except Crash:
                status, answer = 502, None  # API Gateway's answer when the function died
                continue
            status = response["statusCode"]
            answer = json.loads(response["body"]) if response.get("body") else None
            if status < 500:
                return status, answer
        self.client_gave_up.append(f"{method} {path}: {status}")
        return status, answer

    def invoke_async(self, function: str, event: dict[str, Any], dlq: str) -> bool:
        """EventBridge's asynchronous invocation: tried three times, then the event goes to the DLQ."""
        error: BaseException | None = None
        for _ in range(ASYNC_TRIES):
            try:
                self._invoke(function, event)
                return True
            except (Crash, Exception) as failed:
                error = failed
        self.sqs.send_message(
            QueueUrl=self.refs[dlq],
            MessageBody=json.dumps(event),
            MessageAttributes={"ErrorMessage": {"DataType": "String", "StringValue": str(error)[:1024]}},
        )
        return False

    def pump_queue(self, queue: str, function: str) -> int:
        """Deliver a queue's messages to its function until none is left; the invocations made."""
        url = self.refs[queue]
        invocations = 0
        back: list[str] = []  # receipt handles of the messages that fail: they come back
        for _ in range(SQS_ROUNDS):
            received = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                if not back:
                    break
                self._visible_again(url, back)
                back = []
                continue
            invocations += 1
            event = sqs_event(
                [
                    (m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"]))
                    for m in messages
                ]
            )
            failed = self._failed_records(function, event)
            for message in messages:
                if failed is None or message["MessageId"] in failed:
                    back.append(message["ReceiptHandle"])
                else:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return invocations

    def _failed_records(self, function: str, event: dict[str, Any]) -> set[str] | None:
        """The records a partial batch response names; None when the whole invocation failed."""
        try:
            result = self._invoke(function, event)
        except (Crash, Exception):
            return None
        return {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}

    def _visible_again(self, url: str, handles: list[str]) -> None:
        """The visibility timeout passes (a message SQS moved to the DLQ meanwhile is gone)."""
        for handle in handles:
            try:
                self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
            except ClientError:
                continue

    def _on_stream(self, event: dict[str, Any]) -> Any:
        """Note every record (the keys written, the event ids each write added to its outbox), then
        invoke the outbox function with those its filter passes."""
        for record in event["Records"]:
            change = record["dynamodb"]
            self.seen.add(change["SequenceNumber"])
            if record["eventName"] != "REMOVE":
                self.written.add((change["Keys"]["pk"]["S"], change["Keys"]["sk"]["S"]))
            self.owed |= _outbox_ids(change.get("NewImage")) - _outbox_ids(change.get("OldImage"))
        passed = [record for record in event["Records"] if passes(self.patterns, record)]
        if not passed:
            return {"batchItemFailures": []}
        try:
            return self._invoke("outbox", {"Records": passed})
        except Crash as crash:  # Lambda sees a failed invocation, and the stream delivers it again
            raise RuntimeError(str(crash)) from None

    def drain_outbox(self) -> int:
        """Deliver the stream's new records; how many batches it took."""
        return len(self.stream.drain(most=200))

    def sweep(self) -> dict[str, Any] | None:
        """A scheduled sweep, StaleAfterSeconds after the last: a failed one is dropped."""
        self.offset += ports().stale_after + timedelta(seconds=1)
        try:
            return self._invoke("sweeper", load_event("schedule/sweep.json"))  # type: ignore[no-any-return]
        except (Crash, Exception):
            return None

    def pump(self) -> bool:
        """Deliver the queues and the stream until none has anything; True if it did anything."""
        worked = False
        for _ in range(PUMP_ROUNDS):
            done = (
                self.pump_queue("IngestQueue", "file_drop")
                + self.pump_queue("DispatchQueue", "dispatcher")
                + self.drain_outbox()
            )
            if not done:
                return worked
            worked = True
        return worked

    def settle(self, rounds: int = SETTLE_ROUNDS) -> Settled:
        """Deliver everything, then sweep, until a sweep writes nothing (the stream says so). Once every
        job has finished there is nothing left for a sweep to look at."""
        worked = 0
        for _ in range(rounds):
            self.pump()
            if self.all_finished():
                return Settled(quiet=True, sweeps_that_worked=worked)
            before = len(self.seen)
            self.sweep()
            self.pump()
            if len(self.seen) == before:
                return Settled(quiet=True, sweeps_that_worked=worked)
            worked += 1
        return Settled(quiet=False, sweeps_that_worked=worked)

    # -- reading the world --------------------------------------------------------------------------------

    def all_finished(self) -> bool:
        for job_id in self.job_ids():
            item = self.dynamodb.get_item(
                TableName=self.table,
                Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
                ConsistentRead=True,
            ).get("Item")
            if item is not None and not JobStatus(item["status"]["S"]).is_terminal:
                return False
        return True

    def job_ids(self) -> list[str]:
        """The jobs this run made."""
        return sorted(pk[4:] for pk, sk in self.written if sk == "JOB" and pk.startswith("JOB#"))

    def counters(self) -> dict[str, int]:
        """The in-flight counts this run wrote, as "<tenant> <job_type>"."""
        found: dict[str, int] = {}
        for pk, sk in sorted(self.written):
            if pk.startswith("TENANT#") and sk.startswith("INFLIGHT#"):
                item = self.dynamodb.get_item(
                    TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
                ).get("Item")
                found[f"{pk[7:]} {sk[9:]}"] = int(item["in_flight"]["N"]) if item else 0
        return found

    def collect_published(self) -> list[tuple[str, str, str]]:
        """Every alert and job event delivered so far, as (event_id, kind, subject), duplicates kept."""
        for url, read in ((self.alerts_url, _alert), (self.events_url, _job_event)):
            for body in self._receive_all(url):
                self.published.append(read(body))
        self.drain_outbox()
        return self.published

    def dead_letters(self) -> dict[str, list[dict[str, Any]]]:
        return {dlq: self._receive_all(self.refs[dlq]) for dlq in DLQS}

    def lose_messages(self, queue: str) -> None:
        """Every message on the queue is lost (PurgeQueue allows one call a minute)."""
        self._receive_all(self.refs[queue])

    def _receive_all(self, url: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def reset(self) -> None:
        """The next run starts from an empty table and empty queues: what this one wrote is deleted.
        Batch's jobs stay (each run's are told apart by their job ids)."""
        self.drain_outbox()
        keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in sorted(self.written)]
        for start in range(0, len(keys), 25):
            self.dynamodb.batch_write_item(
                RequestItems={self.table: [{"DeleteRequest": {"Key": k}} for k in keys[start : start + 25]]}
            )
        for queue in ("IngestQueue", "DispatchQueue"):  # observing emptied the rest
            self.lose_messages(queue)
        self.drain_outbox()
        self.written.clear()
        self.owed.clear()
        self.published.clear()
        self.client_gave_up.clear()
        self.log_lines.clear()


def _outbox_ids(image: dict[str, Any] | None) -> set[str]:
    if not image or image.get("sk", {}).get("S") != "JOB":
        return set()
    return {entry["M"]["event_id"]["S"] for entry in image.get("outbox", {}).get("L", [])}


def _alert(body: dict[str, Any]) -> tuple[str, str, str]:
    return (body["MessageAttributes"]["event_id"]["Value"], "alert", body.get("Subject", ""))


def _job_event(body: dict[str, Any]) -> tuple[str, str, str]:
    return (body["detail"]["event_id"], "job_event", body["detail-type"])
