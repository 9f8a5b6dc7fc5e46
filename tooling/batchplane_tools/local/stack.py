"""`batchplane local`: the production handlers, unchanged, on one machine.

AWS (DynamoDB and its streams, S3, SQS, SNS, EventBridge) is moto's ThreadedMotoServer on loopback;
AWS Batch is the local emulator, reached by the unchanged adapters through AWS_ENDPOINT_URL_BATCH.
Every resource and every trigger comes from template.yaml: the tables (with their streams), buckets
(with their notifications), queues, topics and buses are provisioned from it, each function's SQS,
DynamoDB-stream, EventBridge-rule, schedule and API events are wired as it says, and each trigger
calls the function's `handler` in this process.

This module starts and stops the pieces: batch.py (the emulator's queues and definitions),
environment.py (the functions' environment), triggers.py (SQS, rules, schedules), invoker.py (how
many invocations of a function at once), moto_atomic.py and apigateway.py.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchplane_tools.console.server import ConsoleServer, Upstream
from batchplane_tools.emulator import BatchEmulator, parse_block
from batchplane_tools.emulator.events import QUEUE_BLOCKED
from batchplane_tools.local.apigateway import LOCAL_TENANT, ApiGateway, ApiSpec
from batchplane_tools.local.batch import batch_specs, put_batch_event
from batchplane_tools.local.environment import (
    CREDENTIALS,
    apply_environment,
    aws_access,
    function_environment,
    recorded_environment,
)
from batchplane_tools.local.front import FrontedMotoServer
from batchplane_tools.local.invoker import Concurrency, Invoker
from batchplane_tools.local.job_logs import LogShipper
from batchplane_tools.local.moto_atomic import serialize_dynamodb
from batchplane_tools.local.moto_speedups import keep_moto_fast
from batchplane_tools.local.s3_events import add_versions_and_sequencers
from batchplane_tools.local.stack_files import StackFiles
from batchplane_tools.local.template import REGION, Stack, provision
from batchplane_tools.local.triggers import Triggers
from batchplane_tools.paths import DEFAULT_POLICY, ROOT, STATE_FILE, TEMPLATE
from batchplane_tools.state_file import LocalInfo


@dataclass
class LocalOptions:
    api_port: int = 8080
    console_port: int = 8081  # the web console (0: any free port)
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
    concurrency: Concurrency = 1  # invocations of one function at once; "template": its reserved
    keep_job_logs: int = 200  # ended jobs whose output files stay in the state directory
    starve_spot: bool = False  # Spot jobs never placed: RUNNABLE with CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY
    block_queues: tuple[str, ...] = ()  # NAME[:REASON]: that queue's jobs never placed (emulator/specs.py)


# What a fresh stack holds for the commands its banner and the README suggest to work as written:
# (key under the local tenant's prefix, content). manual/ is under no file-drop rule: no job is made.
SAMPLE_OBJECTS = {
    "incoming/local/manual/hamlet.txt": b"to be or not to be\nthat is the question\n",
}


class _EmbeddedAws:
    """boto3 clients of moto, its endpoint and credentials given explicitly: the stack's own calls
    do not read os.environ, which is the functions' and is set only once provisioning is done."""

    def __init__(self, url: str) -> None:
        import boto3

        self.url = url
        self._session: Any = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.url)


class LocalStack:
    def __init__(self, options: LocalOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._invoke = Invoker()
        self._moto: Any = None
        self._triggers: Triggers | None = None
        self._api: ApiGateway | None = None
        self._console: ConsoleServer | None = None
        self._shipper: LogShipper | None = None
        self.emulator: BatchEmulator | None = None
        self.stack: Stack | None = None
        self.info: LocalInfo | None = None
        self.files = StackFiles.claim(options.state_file)

    def start(self) -> LocalInfo:
        """Each step needs the one before: moto, the template on it, the emulator (its queues come
        from the template), the environment (the emulator's URL is in it), the triggers (loading the
        handlers, which read the environment), the API, and last the state file, which says "ready"."""
        options = self.options
        # One endpoint for every service: moto, with Batch's requests going to the emulator (front.py).
        self._moto = FrontedMotoServer(options.host, options.aws_port)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        aws = _EmbeddedAws(f"http://{host}:{port}")
        # Clients are thread-safe and the session is not: every thread here uses these three, made
        # once on the starting thread.
        events, sqs, streams = aws.client("events"), aws.client("sqs"), aws.client("dynamodbstreams")
        self.stack = stack = provision(options.template, aws, options.stack_name, batch=False)
        keep_moto_fast()
        serialize_dynamodb()  # the functions run side by side (--concurrency): DynamoDB's atomicity
        add_versions_and_sequencers()
        self._shipper = LogShipper(aws.client("logs"), self._log_streams)
        batch_url = self._start_emulator(stack, aws.url, events)
        assert self._moto.front is not None
        assert self.emulator is not None
        self._moto.front.batch = self.emulator.answer
        self._shipper.start()
        environment = function_environment(
            stack, policy=options.policy, aws_url=aws.url, batch_url=batch_url, inherited=os.environ
        )
        apply_environment(environment)
        self._triggers = Triggers(
            sqs=sqs,
            events=events,
            invoke=self._invoke,
            stop=self._stop,
            sweep_interval=options.sweep_interval,
            streams=streams,
            concurrency=options.concurrency,
        )
        api_handler = self._triggers.wire(stack)
        s3 = aws.client("s3")
        for key, body in SAMPLE_OBJECTS.items():
            s3.put_object(Bucket=environment["INGEST_BUCKET"], Key=key, Body=body)
        if api_handler is None:
            raise RuntimeError("template.yaml has no function with an Api event")
        self._api = ApiGateway(
            options.host, options.api_port, functools.partial(self._invoke, api_handler), ApiSpec.of(stack)
        )
        # The console reads the local API as its default caller, `local`: an operator in policy.yaml.
        self._console = ConsoleServer(options.host, options.console_port, Upstream(self._api.url))
        self.info = _local_info(
            stack,
            environment,
            aws.url,
            batch_url,
            api_url=self._api.url,
            console_url=self._console.url,
            files=self.files,
        )
        self.files.write_env_file(self.info)
        self.info.write(self.files.state_file)
        return self.info

    def stop(self) -> None:
        """Stops whatever has started (also after a failed start); the stack's own files go last."""
        self._stop.set()
        if self.emulator is not None:
            self.emulator.stop()
        if self._console is not None:
            self._console.stop()
        if self._shipper is not None:
            self._shipper.stop()
        if self._api is not None:
            self._api.stop()
        if self._triggers is not None:
            self._triggers.join(timeout=5)
        if self._moto is not None:
            self._moto.stop()
        self.files.release()

    def _log_streams(self) -> list[tuple[str, Path, bool]]:
        return self.emulator.log_streams() if self.emulator is not None else []

    def _emit(self, events: Any, detail: dict[str, Any]) -> None:
        """A Batch state change to the bus, the job's output shipped to its log stream first."""
        if self._shipper is not None:
            self._shipper.before_event(detail)
        put_batch_event(events, detail)

    def _start_emulator(self, stack: Stack, aws_url: str, events: Any) -> str:
        """The Batch emulator with the template's job queues and definitions, serving; its URL."""
        options = self.options
        queues, definitions = batch_specs(stack)
        self.emulator = BatchEmulator(
            queues=queues,
            definitions=definitions,
            emit=functools.partial(self._emit, events),
            emit_blocked=functools.partial(put_batch_event, events, detail_type=QUEUE_BLOCKED),
            starve_spot=options.starve_spot,
            blocked_queues=dict(parse_block(text, queues) for text in options.block_queues),
            workers=options.workers,
            spot_interruption_rate=options.spot_interruption_rate,
            spot_interruption_after=(options.spot_interruption_after / 4, options.spot_interruption_after),
            seed=options.seed,
            job_environment=aws_access(aws_url),
            cwd=ROOT,
            log_dir=self.files.jobs,
            keep_logs=options.keep_job_logs,
        )
        return self.emulator.serve(options.host, 0)


def _local_info(
    stack: Stack,
    environment: dict[str, str],
    aws_url: str,
    batch_url: str,
    *,
    api_url: str,
    console_url: str,
    files: StackFiles,
) -> LocalInfo:
    return LocalInfo(
        api_url=api_url,
        console_url=console_url,
        aws_endpoint_url=aws_url,
        batch_endpoint_url=batch_url,
        region=REGION,
        tenant=LOCAL_TENANT,
        ingest_bucket=environment.get("INGEST_BUCKET", ""),
        artifact_bucket=environment["ARTIFACT_BUCKET"],
        jobs_table=environment["JOBS_TABLE_NAME"],
        alert_topic_arn=environment["ALERT_TOPIC_ARN"],
        event_bus_name=environment["EVENT_BUS_NAME"],
        pid=os.getpid(),
        env_file=str(files.env_file),
        jobs_dir=str(files.jobs),
        outputs=stack.outputs(),
        function_environment=recorded_environment(environment, stack),
    )
