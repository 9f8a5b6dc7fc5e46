"""A local AWS Batch: the API subset batchplane uses, with each job run as a local process.

The unchanged boto3 batch client talks to it (REST-JSON on loopback, reached in production code
through AWS_ENDPOINT_URL_BATCH): SubmitJob, DescribeJobs, ListJobs, TerminateJob and CancelJob. Jobs
move SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED as Batch moves
them, and every transition from RUNNABLE on is handed to `emit` as the "detail" of a "Batch Job State
Change" event, in AWS's shape: attempts, exit codes and status reasons as Batch reports them for an
exit, an out-of-memory kill, a timeout, a Spot interruption and TerminateJob.

A job is its definition's command with `Ref::name` parameters substituted, started in its own
process group (the container) with a clean environment; the group's memory is watched and its
attempt duration enforced. Standard library only; never imported by a Lambda function.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
TASK_FAILED_TO_START = "Task failed to start"
STOPPED_REASON = "Batch emulator stopped"
# Batch waits 30 s between SIGTERM and SIGKILL; locally that would only slow everything down.
TERMINATE_GRACE_SECONDS = 2.0
STATE_STEP_SECONDS = 0.02  # SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING, at least this apart
TICK_SECONDS = 0.01
MEMORY_POLL_SECONDS = 0.05
DESCRIBE_MAX = 100
LIST_MAX_WITH_FILTER = 100
LIST_MAX_WITH_STATUS = 1000
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
NOT_STARTED = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})
# The transitions that reach EventBridge as "Batch Job State Change" (none for SUBMITTED or PENDING).
EMITTED = frozenset({"RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"})
ENDED = frozenset({"SUCCEEDED", "FAILED"})
CAPACITIES = frozenset({"SPOT", "ON_DEMAND"})
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
BASE_ENVIRONMENT = ("PATH", "HOME", "LANG")
UNSUPPORTED_SUBMIT_MEMBERS = (
    "dependsOn",
    "arrayProperties",
    "nodeOverrides",
    "eksPropertiesOverride",
    "ecsPropertiesOverride",
)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arn: str
    capacity: str  # "SPOT" or "ON_DEMAND"


@dataclass(frozen=True)
class DefinitionSpec:
    name: str
    arn: str  # ends with ":<revision>", e.g. ...:job-definition/batchplane-local-word-count:1
    command: list[str]
    parameters: dict[str, str]  # default parameters
    vcpus: int
    memory_mib: int
    timeout_seconds: int  # 0 or less: no timeout
    environment: dict[str, str]

    @property
    def revision(self) -> int:
        return int(self.arn.rsplit(":", 1)[1])


class _ClientException(Exception):
    """Answered as HTTP 400 with x-amzn-ErrorType: ClientException, as Batch does."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class _Job:
    seq: int
    job_id: str
    arn: str
    name: str
    queue: QueueSpec
    definition: DefinitionSpec
    parameters: dict[str, str]
    command: list[str]
    environment: dict[str, str]
    vcpus: str
    memory_mib: int
    timeout_seconds: int | None
    retry_strategy: dict[str, Any] | None
    tags: dict[str, str]
    propagate_tags: bool
    created_at: int
    due: float  # monotonic time of the next scheduling step
    status: str = "SUBMITTED"
    status_reason: str | None = None
    started_at: int | None = None
    stopped_at: int | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    reason: str | None = None
    task_arn: str | None = None
    container_instance_arn: str | None = None
    log_stream_name: str | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    timeout_at: float | None = None
    spot_at: float | None = None
    kill_at: float | None = None  # SIGKILL the group then (the grace after SIGTERM)
    cause: str | None = None  # why the emulator is ending it: oom, timeout, spot, terminate, stop
    cause_reason: str | None = None
    is_cancelled: bool = False
    is_terminated: bool = False


def _exit_fields(job: _Job) -> dict[str, Any]:
    """The container's exit code and reason, each only once there is one to report."""
    found: dict[str, Any] = {}
    if job.exit_code is not None:
        found["exitCode"] = job.exit_code
    if job.reason is not None:
        found["reason"] = job.reason
    return found


def _now_ms() -> int:
    return int(time.time() * 1000)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _exit_code(wait_status: int) -> int:
    """As Docker reports it: the exit status, or 128 + the signal that killed the process."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


with open("/proc/self/cmdline", "rb") as _self:
    _OWN_CMDLINE = _self.read()


def _process_tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc/<pid>/task/<tid>/children (no scan of all of /proc)."""
    found, index = [pid], 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                    found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue  # it ended meanwhile
    return found


def _group_memory_kib(pgids: set[int]) -> dict[int, int]:
    """Per job (its main process id, which is its process group): the larger of the summed VmRSS of
    its process tree and one process's peak (VmHWM).

    A cgroup limit applies to the sum; one process's peak over the limit would have been killed
    even if it fell between two polls.
    """
    usage: dict[int, int] = {}
    for pgid in pgids:
        rss = peak = 0
        for pid in _process_tree(pgid):
            try:
                # Between fork and exec a job's process is still a copy of this one, with its
                # memory: not the job's yet.
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    if handle.read() == _OWN_CMDLINE:
                        continue
                with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
                    for line in handle:
                        if line.startswith("VmRSS:"):
                            rss += int(line.split()[1])
                        elif line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                continue  # the process ended meanwhile
        usage[pgid] = max(rss, peak)
    return usage


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: BatchEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        assert isinstance(self.server, _Server)
        status, headers, body = self.server.emulator._handle(self.path, raw)
        self._reply(status, headers, body)

    def _not_found(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        message = f"{self.command} {self.path} is not an operation of the local Batch emulator"
        self._reply(404, {"x-amzn-ErrorType": "ClientException"}, {"message": message})

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_found

    def _reply(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("batch emulator: " + format, *args)


class BatchEmulator:
    """AWS Batch on this machine: jobs are local processes, state changes go to `emit`."""

    def __init__(
        self,
        *,
        queues: list[QueueSpec],
        definitions: list[DefinitionSpec],
        emit: Callable[[dict[str, Any]], None],
        workers: int = 2,
        spot_interruption_rate: float = 0.0,
        seed: int | None = None,
        job_environment: dict[str, str] | None = None,
        cwd: Path | None = None,
        python: str = sys.executable,
        region: str = "us-east-1",
        account: str = "123456789012",
        spot_interruption_after: tuple[float, float] = (0.2, 1.0),
    ) -> None:
        for spec in queues:
            if spec.capacity not in CAPACITIES:
                raise ValueError(f"queue {spec.name}: capacity is SPOT or ON_DEMAND, not {spec.capacity}")
        for definition in definitions:
            if not re.search(r":\d+$", definition.arn):
                raise ValueError(f"job definition {definition.name}: arn must end with :<revision>")
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        if not 0.0 <= spot_interruption_rate <= 1.0:
            raise ValueError("spot_interruption_rate must be between 0 and 1")
        low, high = spot_interruption_after
        if not 0.0 <= low <= high:
            raise ValueError("spot_interruption_after must be (low, high) with 0 <= low <= high")
        self._queues = list(queues)
        self._definitions = list(definitions)
        self._emit = emit
        self._workers = workers
        self._spot_rate = spot_interruption_rate
        self._spot_after = (low, high)
        self._rng = random.Random(seed)
        self._job_environment = dict(job_environment or {})
        self._cwd = cwd
        self._python = python
        self._region = region
        self._account = account
        self._clusters = {capacity: str(uuid.uuid4()) for capacity in CAPACITIES}

        self._cond = threading.Condition(threading.Lock())
        self._jobs: dict[str, _Job] = {}
        self._order: list[_Job] = []
        self._live: list[_Job] = []  # not ended yet, in submission order
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._log_dir: Path | None = None
        self._serving = False
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Starts the HTTP endpoint, the scheduler and the event emitter; returns the endpoint URL."""
        with self._cond:
            if self._serving or self._stopping:
                raise RuntimeError("the Batch emulator serves once")
            self._serving = True
        self._log_dir = Path(tempfile.mkdtemp(prefix="batchplane-batch-"))
        self._server = _Server((host, port), self)
        bound_port = self._server.server_address[1]
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="batch-emulator-http", daemon=True
            ),
            threading.Thread(target=self._run, name="batch-emulator-scheduler", daemon=True),
            threading.Thread(target=self._emit_loop, name="batch-emulator-events", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return f"http://{host}:{bound_port}"

    def stop(self) -> None:
        """Kills every job's process group, then stops the threads and the server. Idempotent.

        Events already queued are still emitted; the endings that stopping causes are not.
        """
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        if not self._threads:
            return
        http, scheduler, emitter = self._threads
        scheduler.join()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        http.join(timeout=5)
        self._outbox.put(None)
        if threading.current_thread() is not emitter:  # stop() may be called from inside emit
            emitter.join(timeout=5)

    @property
    def log_dir(self) -> Path | None:
        """Where the jobs' output goes (one file per log stream); None until `serve`."""
        return self._log_dir

    def log_path(self, job_id: str) -> Path | None:
        """The file holding a job's stdout and stderr, once it has started."""
        with self._cond:
            job = self._jobs.get(job_id)
            return job.log_path if job is not None else None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, in submission order, as DescribeJobs details."""
        with self._cond:
            return [self._detail(job) for job in self._order]

    def interrupt_spot(self, job_id: str) -> bool:
        """Interrupts a running job on a Spot queue now, as a reclaimed Spot instance would."""
        with self._cond:
            job = self._jobs.get(job_id)
            if (
                job is None
                or job.status != "RUNNING"
                or job.process is None
                or job.queue.capacity != "SPOT"
                or job.cause is not None
            ):
                return False
            self._interrupt(job)
            return True

    # -- HTTP -----------------------------------------------------------------------------------------

    def _handle(self, path: str, raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "/v1/submitjob": self._submit_job,
            "/v1/describejobs": self._describe_jobs,
            "/v1/listjobs": self._list_jobs,
            "/v1/terminatejob": self._terminate_job,
            "/v1/canceljob": self._cancel_job,
        }
        try:
            operation = operations.get(path.split("?", 1)[0].rstrip("/"))
            if operation is None:
                raise _ClientException(f"POST {path} is not an operation of the local Batch emulator", 404)
            try:
                body = json.loads(raw or b"{}")
            except ValueError as error:
                raise _ClientException(f"The request body is not JSON: {error}") from error
            if not isinstance(body, dict):
                raise _ClientException("The request body must be a JSON object")
            return 200, {}, operation(body)
        except _ClientException as error:
            return error.status, {"x-amzn-ErrorType": "ClientException"}, {"message": error.message}
        except Exception as error:
            logger.exception("batch emulator: %s failed", path)
            return 500, {"x-amzn-ErrorType": "ServerException"}, {"message": str(error)}

    # -- operations -----------------------------------------------------------------------------------

    def _submit_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("jobName")
        if not isinstance(name, str) or not JOB_NAME.match(name):
            raise _ClientException(
                "jobName must be 1 to 128 letters, numbers, hyphens and underscores, starting alphanumeric"
            )
        for unsupported in UNSUPPORTED_SUBMIT_MEMBERS:
            if body.get(unsupported):
                raise _ClientException(f"{unsupported} is not supported by the local Batch emulator")
        job_queue = self._find_queue(body.get("jobQueue"))
        definition = self._find_definition(body.get("jobDefinition"))
        given = body.get("parameters") or {}
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise _ClientException("parameters must map names to strings")
        parameters = {**definition.parameters, **given}

        overrides = body.get("containerOverrides") or {}
        if not isinstance(overrides, dict):
            raise _ClientException("containerOverrides must be an object")
        vcpus, memory_mib = self._resources(definition, overrides)
        environment = self._environment(definition, overrides)
        # A command element that is exactly Ref::name takes the parameter's value; without one it stays.
        command = [
            parameters.get(token[5:], token) if token.startswith("Ref::") else token
            for token in overrides.get("command") or definition.command
        ]
        timeout_seconds = self._timeout(definition, body.get("timeout") or {})
        retry_strategy = self._retry_strategy(body.get("retryStrategy"))
        tags = body.get("tags") or {}
        if not isinstance(tags, dict):
            raise _ClientException("tags must be an object")
        job_id = str(uuid.uuid4())
        arn = f"arn:aws:batch:{self._region}:{self._account}:job/{job_id}"
        with self._cond:
            if self._stopping:
                raise _ClientException("The local Batch emulator is stopping")
            job = _Job(
                seq=len(self._order),
                job_id=job_id,
                arn=arn,
                name=name,
                queue=job_queue,
                definition=definition,
                parameters=parameters,
                command=command,
                environment=environment,
                vcpus=vcpus,
                memory_mib=memory_mib,
                timeout_seconds=timeout_seconds,
                retry_strategy=retry_strategy,
                tags={str(k): str(v) for k, v in tags.items()},
                propagate_tags=bool(body.get("propagateTags", False)),
                created_at=_now_ms(),
                due=time.monotonic() + STATE_STEP_SECONDS,
            )
            self._jobs[job_id] = job
            self._order.append(job)
            self._live.append(job)
            self._cond.notify_all()
        return {"jobArn": arn, "jobName": name, "jobId": job_id}

    @staticmethod
    def _environment(definition: DefinitionSpec, overrides: dict[str, Any]) -> dict[str, str]:
        environment = dict(definition.environment)
        for variable in overrides.get("environment") or []:
            name = variable.get("name") if isinstance(variable, dict) else None
            if not isinstance(name, str) or not name:
                raise _ClientException("containerOverrides.environment entries need a name")
            if name.startswith("AWS_BATCH"):
                raise _ClientException("Environment variable names can't start with AWS_BATCH")
            environment[name] = str(variable.get("value", ""))
        return environment

    @staticmethod
    def _timeout(definition: DefinitionSpec, timeout: dict[str, Any]) -> int | None:
        seconds = timeout.get("attemptDurationSeconds")
        if seconds is None:
            return definition.timeout_seconds if definition.timeout_seconds > 0 else None
        # Batch refuses less than 60 s; locally a short timeout is what tests need.
        if not isinstance(seconds, int) or seconds < 1:
            raise _ClientException("timeout.attemptDurationSeconds must be a positive integer")
        return seconds

    @staticmethod
    def _retry_strategy(retry: Any) -> dict[str, Any] | None:
        """Kept for DescribeJobs; the emulator runs one attempt whatever it says."""
        if not retry:
            return None
        attempts = retry.get("attempts", 1)
        if not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise _ClientException("retryStrategy.attempts must be between 1 and 10")
        return {"attempts": attempts, "evaluateOnExit": list(retry.get("evaluateOnExit") or [])}

    @staticmethod
    def _resources(definition: DefinitionSpec, overrides: dict[str, Any]) -> tuple[str, int]:
        vcpus = str(definition.vcpus)
        memory_mib = definition.memory_mib
        try:
            if overrides.get("vcpus") is not None:
                vcpus = str(int(overrides["vcpus"]))
            if overrides.get("memory") is not None:
                memory_mib = int(overrides["memory"])
            for requirement in overrides.get("resourceRequirements") or []:
                kind, value = requirement.get("type"), str(requirement.get("value"))
                if kind == "VCPU":
                    if float(value) <= 0:
                        raise ValueError(value)
                    vcpus = value
                elif kind == "MEMORY":
                    memory_mib = int(value)
        except (TypeError, ValueError, AttributeError) as error:
            raise _ClientException(f"Invalid resource requirement: {error}") from error
        if memory_mib < 1:
            raise _ClientException("MEMORY must be at least 1 MiB")
        return vcpus, memory_mib

    def _find_queue(self, ref: Any) -> QueueSpec:
        for spec in self._queues:
            if ref in (spec.name, spec.arn):
                return spec
        raise _ClientException(f"Job queue {ref} does not exist")

    def _find_definition(self, ref: Any) -> DefinitionSpec:
        if isinstance(ref, str):
            exact = [d for d in self._definitions if ref in (d.arn, f"{d.name}:{d.revision}")]
            if exact:
                return exact[0]
            named = [d for d in self._definitions if d.name == ref]
            if named:
                return max(named, key=lambda d: d.revision)
        raise _ClientException(f"Job definition {ref} does not exist")

    def _describe_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("jobs") or []
        if not isinstance(ids, list):
            raise _ClientException("jobs must be a list of job ids")
        if len(ids) > DESCRIBE_MAX:
            raise _ClientException(f"jobs takes at most {DESCRIBE_MAX} job ids")
        with self._cond:
            return {"jobs": [self._detail(self._jobs[i]) for i in ids if i in self._jobs]}

    def _list_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("arrayJobId") or body.get("multiNodeJobId"):
            raise _ClientException("The local Batch emulator has no array or multi-node jobs")
        job_queue = self._find_queue(body.get("jobQueue"))
        filters = body.get("filters") or []
        if len(filters) > 1:
            raise _ClientException("Only one filter can be used at a time")
        if filters:
            match = self._filter(filters[0])
            limit = LIST_MAX_WITH_FILTER
        else:
            wanted = body.get("jobStatus") or "RUNNING"
            if wanted not in STATUSES:
                raise _ClientException(f"jobStatus must be one of {', '.join(STATUSES)}")

            def match(job: _Job) -> bool:
                return job.status == wanted

            limit = LIST_MAX_WITH_STATUS
        max_results = body.get("maxResults")
        if max_results is not None:
            if not isinstance(max_results, int) or max_results < 1:
                raise _ClientException("maxResults must be at least 1")
            limit = min(limit, max_results)
        before: int | None = None
        token = body.get("nextToken")
        if token:
            try:
                before = int(token)
            except ValueError as error:
                raise _ClientException("Invalid nextToken") from error
        with self._cond:
            # Newest first; the token is the submission number to continue below, so jobs submitted
            # between pages never shift the pages already handed out.
            found: list[_Job] = []
            for job in reversed(self._order):
                if before is not None and job.seq >= before:
                    continue
                if job.queue is job_queue and match(job):
                    found.append(job)
                    if len(found) > limit:
                        break
            page = found[:limit]
            result: dict[str, Any] = {"jobSummaryList": [self._summary(job) for job in page]}
        if len(found) > limit:
            result["nextToken"] = str(page[-1].seq)
        return result

    def _filter(self, spec: Any) -> Callable[[_Job], bool]:
        if not isinstance(spec, dict) or not spec.get("values"):
            raise _ClientException("A filter needs a name and one value")
        name, value = spec.get("name"), str(spec["values"][0])
        if name == "JOB_NAME":
            wanted = value.lower()
            if wanted.endswith("*"):
                return lambda job: job.name.lower().startswith(wanted[:-1])
            return lambda job: job.name.lower() == wanted
        if name == "JOB_DEFINITION":
            if value.startswith("arn:"):
                return lambda job: job.definition.arn == value
            if value.endswith("*"):
                return lambda job: job.definition.name.startswith(value[:-1])
            return lambda job: (
                value in (job.definition.name, f"{job.definition.name}:{job.definition.revision}")
            )
        if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
            try:
                at = int(value)
            except ValueError as error:
                raise _ClientException(f"{name} takes epoch milliseconds") from error
            if name == "BEFORE_CREATED_AT":
                return lambda job: job.created_at < at
            return lambda job: job.created_at > at
        raise _ClientException(f"Unsupported filter {name}")

    def _terminate_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._end_by_request(body, started_too=True)

    def _cancel_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._end_by_request(body, started_too=False)

    def _end_by_request(self, body: dict[str, Any], *, started_too: bool) -> dict[str, Any]:
        job_id, reason = body.get("jobId"), body.get("reason")
        if not isinstance(reason, str) or not reason:
            raise _ClientException("reason is required")
        with self._cond:
            job = self._jobs.get(job_id) if isinstance(job_id, str) else None
            if job is None:
                raise _ClientException(f"Job {job_id} does not exist")
            if job.status in NOT_STARTED:
                job.is_cancelled = True
                self._finish(job, "FAILED", reason)
            elif job.status in ENDED or not started_too or job.cause is not None:
                pass  # CancelJob leaves started jobs alone; a job already being ended keeps its cause
            elif job.process is None:  # STARTING, not spawned yet
                job.is_terminated = True
                job.attempts.append(self._attempt(job, reason))
                self._finish(job, "FAILED", reason)
            else:
                job.is_terminated = True
                job.cause, job.cause_reason = "terminate", reason
                _signal_group(job.process.pid, signal.SIGTERM)
                job.kill_at = time.monotonic() + TERMINATE_GRACE_SECONDS
        return {}

    # -- job details ----------------------------------------------------------------------------------

    def _detail(self, job: _Job) -> dict[str, Any]:
        """The job as DescribeJobs returns it (and as the event's detail carries it)."""
        container: dict[str, Any] = {
            "image": "local",
            "command": list(job.command),
            "volumes": [],
            "environment": [{"name": k, "value": v} for k, v in job.environment.items()],
            "mountPoints": [],
            "readonlyRootFilesystem": False,
            "ulimits": [],
            "privileged": False,
        }
        container.update(_exit_fields(job))
        if job.task_arn is not None:
            container["containerInstanceArn"] = job.container_instance_arn
            container["taskArn"] = job.task_arn
        if job.log_stream_name is not None:
            container["logStreamName"] = job.log_stream_name
        container["networkInterfaces"] = []
        container["resourceRequirements"] = [
            {"value": job.vcpus, "type": "VCPU"},
            {"value": str(job.memory_mib), "type": "MEMORY"},
        ]
        container["logConfiguration"] = {"logDriver": "awslogs", "options": {}, "secretOptions": []}
        container["secrets"] = []

        detail: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "jobId": job.job_id,
            "jobQueue": job.queue.arn,
            "status": job.status,
            "attempts": copy.deepcopy(job.attempts),
        }
        if job.status_reason is not None:
            detail["statusReason"] = job.status_reason
        detail["createdAt"] = job.created_at
        if job.retry_strategy is not None:
            detail["retryStrategy"] = copy.deepcopy(job.retry_strategy)
        if job.started_at is not None:
            detail["startedAt"] = job.started_at
        if job.stopped_at is not None:
            detail["stoppedAt"] = job.stopped_at
        detail["dependsOn"] = []
        detail["jobDefinition"] = job.definition.arn
        detail["parameters"] = dict(job.parameters)
        detail["container"] = container
        if job.timeout_seconds is not None:
            detail["timeout"] = {"attemptDurationSeconds": job.timeout_seconds}
        if job.tags:
            detail["tags"] = {"resourceArn": job.arn, **job.tags}
        detail["propagateTags"] = job.propagate_tags
        detail["platformCapabilities"] = ["EC2"]
        detail["eksAttempts"] = []
        detail["isCancelled"] = job.is_cancelled
        detail["isTerminated"] = job.is_terminated
        return detail

    @staticmethod
    def _summary(job: _Job) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "jobArn": job.arn,
            "jobId": job.job_id,
            "jobName": job.name,
            "createdAt": job.created_at,
            "status": job.status,
        }
        if job.status_reason is not None:
            summary["statusReason"] = job.status_reason
        if job.started_at is not None:
            summary["startedAt"] = job.started_at
        if job.stopped_at is not None:
            summary["stoppedAt"] = job.stopped_at
        summary["container"] = _exit_fields(job)
        summary["jobDefinition"] = job.definition.arn
        summary["isCancelled"] = job.is_cancelled
        summary["isTerminated"] = job.is_terminated
        return summary

    @staticmethod
    def _attempt(job: _Job, status_reason: str) -> dict[str, Any]:
        container: dict[str, Any] = {
            "containerInstanceArn": job.container_instance_arn,
            "taskArn": job.task_arn,
            **_exit_fields(job),
        }
        if job.log_stream_name is not None:
            container["logStreamName"] = job.log_stream_name
        container["networkInterfaces"] = []
        attempt: dict[str, Any] = {"container": container}
        if job.started_at is not None:
            attempt["startedAt"] = job.started_at
        attempt["stoppedAt"] = _now_ms()
        attempt["statusReason"] = status_reason
        return attempt

    # -- state changes (all under the lock) -----------------------------------------------------------

    def _move(self, job: _Job, status: str) -> None:
        job.status = status
        if status in EMITTED and not self._stopping:
            self._outbox.put(self._detail(job))

    def _finish(self, job: _Job, status: str, status_reason: str) -> None:
        job.status_reason = status_reason
        job.stopped_at = job.attempts[-1]["stoppedAt"] if job.attempts else _now_ms()
        job.process = None
        job.timeout_at = job.spot_at = job.kill_at = None
        if job in self._live:
            self._live.remove(job)
        self._move(job, status)

    def _interrupt(self, job: _Job) -> None:
        """The Spot instance is reclaimed: the whole task dies at once, with no exit code to report."""
        assert job.process is not None
        instance = f"i-{self._rng.getrandbits(68):017x}"
        job.cause, job.cause_reason = "spot", f"Host EC2 (instance {instance}) terminated."
        _signal_group(job.process.pid, signal.SIGKILL)

    def _start(self, job: _Job) -> None:
        """RUNNABLE -> STARTING: a task is placed on a container instance."""
        cluster = f"AWSBatch-{self._compute_environment(job)}-{self._clusters[job.queue.capacity]}"
        prefix = f"arn:aws:ecs:{self._region}:{self._account}"
        job.task_arn = f"{prefix}:task/{cluster}/{uuid.uuid4().hex}"
        job.container_instance_arn = f"{prefix}:container-instance/{cluster}/{uuid.uuid4().hex}"
        job.due = time.monotonic() + STATE_STEP_SECONDS
        self._move(job, "STARTING")

    @staticmethod
    def _compute_environment(job: _Job) -> str:
        return "local-spot" if job.queue.capacity == "SPOT" else "local-on-demand"

    def _spawn(self, job: _Job) -> None:
        """STARTING -> RUNNING: the container's command runs in its own process group."""
        assert job.task_arn is not None
        assert self._log_dir is not None
        task_id = job.task_arn.rsplit("/", 1)[1]
        stream = f"{job.definition.name}/default/{task_id}"
        environment = {name: os.environ[name] for name in BASE_ENVIRONMENT if name in os.environ}
        environment.update(self._job_environment)
        environment.update(job.environment)
        environment.update(
            AWS_BATCH_JOB_ID=job.job_id,
            AWS_BATCH_JOB_ATTEMPT="1",
            AWS_BATCH_JQ_NAME=job.queue.name,
            AWS_BATCH_CE_NAME=self._compute_environment(job),
        )
        argv = list(job.command)
        if argv and argv[0] == "python":
            argv[0] = self._python
        log_path = self._log_dir / stream
        try:
            if not argv:
                raise OSError("the container has no command")
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    argv,
                    cwd=self._cwd,
                    env=environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as error:
            job.reason = f"CannotStartContainerError: {error}"[:255]
            job.attempts.append(self._attempt(job, TASK_FAILED_TO_START))
            self._finish(job, "FAILED", TASK_FAILED_TO_START)
            return
        now = time.monotonic()
        job.process = process
        job.log_path = log_path
        job.log_stream_name = stream
        job.started_at = _now_ms()
        if job.timeout_seconds is not None:
            job.timeout_at = now + job.timeout_seconds
        if job.queue.capacity == "SPOT" and self._spot_rate > 0 and self._rng.random() < self._spot_rate:
            job.spot_at = now + self._rng.uniform(*self._spot_after)
        self._move(job, "RUNNING")

    def _exited(self, job: _Job, wait_status: int) -> None:
        """The container's main process ended: the rest of its group goes with it, as in a container."""
        assert job.process is not None
        _signal_group(job.process.pid, signal.SIGKILL)
        job.process.returncode = os.waitstatus_to_exitcode(wait_status)  # reaped here, not by Popen
        code = _exit_code(wait_status)
        # (ru_maxrss is no evidence of an OOM here: Linux carries the forking parent's peak across
        # exec into it, so a small job started by a big process would look like it blew its limit.)
        cause = job.cause
        if cause == "spot":
            status_reason = job.cause_reason or "Host EC2 terminated."
        elif cause == "oom":
            code, job.reason, status_reason = 137, OUT_OF_MEMORY_REASON, ESSENTIAL_CONTAINER_EXITED
        elif cause == "timeout":
            status_reason = TIMEOUT_REASON
        elif cause in ("terminate", "stop"):
            status_reason = job.cause_reason or STOPPED_REASON
        else:
            status_reason = ESSENTIAL_CONTAINER_EXITED
        job.exit_code = None if cause == "spot" else code
        job.attempts.append(self._attempt(job, status_reason))
        self._finish(job, "SUCCEEDED" if cause is None and code == 0 else "FAILED", status_reason)

    # -- the scheduler thread -------------------------------------------------------------------------

    def _run(self) -> None:
        last_memory_poll = 0.0
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        break
                    now = time.monotonic()
                    self._schedule(now)
                    self._supervise(now)
                if now - last_memory_poll >= MEMORY_POLL_SECONDS:
                    last_memory_poll = now
                    self._enforce_memory()
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(TICK_SECONDS)
        except Exception:
            logger.exception("batch emulator: the scheduler failed")
        finally:
            self._kill_all()

    def _schedule(self, now: float) -> None:
        active = sum(1 for job in self._live if job.status in ("STARTING", "RUNNING"))
        for job in list(self._live):
            if now < job.due:
                continue
            if job.status == "SUBMITTED":
                job.due = now + STATE_STEP_SECONDS
                self._move(job, "PENDING")
            elif job.status == "PENDING":
                job.due = now + STATE_STEP_SECONDS
                self._move(job, "RUNNABLE")
            elif job.status == "RUNNABLE" and active < self._workers:
                active += 1
                self._start(job)
            elif job.status == "STARTING" and job.process is None:
                self._spawn(job)

    def _supervise(self, now: float) -> None:
        for job in list(self._live):
            if job.process is None:
                continue
            pid = job.process.pid
            try:
                reaped, wait_status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: the exit status is lost
                reaped, wait_status = pid, 255 << 8
            if reaped == pid:
                self._exited(job, wait_status)
            elif job.kill_at is not None and now >= job.kill_at:
                job.kill_at = None
                _signal_group(pid, signal.SIGKILL)
            elif job.cause is None and job.timeout_at is not None and now >= job.timeout_at:
                job.cause = "timeout"
                _signal_group(pid, signal.SIGTERM)
                job.kill_at = now + TERMINATE_GRACE_SECONDS
            elif job.cause is None and job.spot_at is not None and now >= job.spot_at:
                self._interrupt(job)

    def _enforce_memory(self) -> None:
        """Polls the running groups' memory (outside the lock) and kills those over their limit."""
        with self._cond:
            limits = {
                job.process.pid: job.memory_mib * 1024
                for job in self._live
                if job.process is not None and job.cause is None
            }
        if not limits:
            return
        usage = _group_memory_kib(set(limits))
        with self._cond:
            for job in self._live:
                if job.process is None or job.cause is not None:
                    continue
                pgid = job.process.pid
                if usage.get(pgid, 0) > limits.get(pgid, sys.maxsize):
                    job.cause = "oom"
                    _signal_group(pgid, signal.SIGKILL)

    def _kill_all(self) -> None:
        """On stop: SIGKILL every job's group and reap its main process."""
        with self._cond:
            running = [job for job in self._live if job.process is not None]
            for job in running:
                assert job.process is not None
                if job.cause is None:
                    job.cause, job.cause_reason = "stop", STOPPED_REASON
                _signal_group(job.process.pid, signal.SIGKILL)
        for job in running:
            wait_status = self._reap(job)
            if wait_status is not None:
                with self._cond:
                    if job.process is not None:
                        self._exited(job, wait_status)

    @staticmethod
    def _reap(job: _Job) -> int | None:
        """The killed process's wait status; None if it is gone already or outlives the wait."""
        process = job.process
        if process is None:
            return None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                reaped, wait_status = os.waitpid(process.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if reaped == process.pid:
                return wait_status
            time.sleep(0.005)
        logger.warning("batch emulator: process %s survived SIGKILL", process.pid)
        return None

    # -- the event thread -----------------------------------------------------------------------------

    def _emit_loop(self) -> None:
        """One thread calls `emit`, in the order the transitions happened; its failures are logged."""
        while True:
            detail = self._outbox.get()
            if detail is None:
                return
            try:
                self._emit(detail)
            except Exception:
                logger.exception(
                    "batch emulator: emit failed for job %s (%s)", detail.get("jobId"), detail.get("status")
                )
