"""BatchEmulator: a local AWS Batch, the API subset batchplane uses, with each job run as a local process.

The unchanged boto3 batch client talks to it (REST-JSON on loopback, reached in production code
through AWS_ENDPOINT_URL_BATCH): SubmitJob, DescribeJobs, ListJobs, TerminateJob, CancelJob,
DescribeJobQueues and GetJobQueueSnapshot (a queue's first 100 RUNNABLE jobs). Jobs
move SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED as Batch moves
them, and every transition from RUNNABLE on is handed to `emit` as the "detail" of a "Batch Job State
Change" event, in AWS's shape: attempts, exit codes and status reasons as Batch reports them for an
exit, an out-of-memory kill, a timeout, a Spot interruption and TerminateJob. With `starve_spot`, Spot
jobs never get capacity, and a queue of `blocked_queues` places none of its jobs: they stay RUNNABLE
with Batch's reason, are handed to `emit_blocked` as a "Batch Job Queue Blocked" detail, and are
cancelled by their queue's `time_limit_actions` (jobStateTimeLimitActions) as Batch cancels them.
An array job (arrayProperties.size 2..10,000) is a parent and children "<parent>:<index>" that run as
jobs of their own (AWS_BATCH_JOB_ARRAY_INDEX in their environment) with their own events; the parent
follows them (arrays.py). ListJobs by arrayJobId lists the children.

A job is its definition's command with `Ref::name` parameters substituted, started in its own
process group (the container) with a clean environment; the group's memory is watched and its
attempt duration enforced. Linux only (it reads /proc). Standard library only; never imported by a
Lambda function.

Who does what: `server` (HTTP and routing), `requests` (parsing and validation), `scheduler` (the job
table and its state steps), `supervisor` (the processes), `shapes` (the answers' and events' dicts),
`events` (the thread that calls `emit`), `arrays` (an array job's parent and children).
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchplane_tools.emulator import shapes
from batchplane_tools.emulator.events import EventPump
from batchplane_tools.emulator.job import now_ms
from batchplane_tools.emulator.requests import (
    Reply,
    find_queue,
    parse_describe,
    parse_describe_queues,
    parse_end,
    parse_list,
    parse_submit,
)
from batchplane_tools.emulator.scheduler import Scheduler
from batchplane_tools.emulator.server import BatchServer, Operations
from batchplane_tools.emulator.specs import DefinitionSpec, QueueSpec, check_specs
from batchplane_tools.emulator.supervisor import Supervisor

FRONT_OF_QUEUE = 100  # GetJobQueueSnapshot lists a queue's first 100 RUNNABLE jobs


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
        log_dir: Path | None = None,
        keep_logs: int | None = None,
        emit_blocked: Callable[[dict[str, Any]], None] | None = None,
        starve_spot: bool = False,
        blocked_queues: dict[str, str] | None = None,
    ) -> None:
        """`log_dir`: where the jobs' output files go (default: a temporary directory, removed on
        stop); `keep_logs`: how many ended jobs' files are kept there (default: all)."""
        if keep_logs is not None and keep_logs < 1:
            raise ValueError("keep_logs must be 1 or more")
        # First, so that elsewhere than Linux the one error is that this runs on Linux only.
        self._supervisor = Supervisor(
            python=python,
            cwd=cwd,
            job_environment=job_environment or {},
            log_dir=log_dir,
            keep_logs=keep_logs,
        )
        check_specs(queues, definitions)
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        if not 0.0 <= spot_interruption_rate <= 1.0:
            raise ValueError("spot_interruption_rate must be between 0 and 1")
        low, high = spot_interruption_after
        if not 0.0 <= low <= high:
            raise ValueError("spot_interruption_after must be (low, high) with 0 <= low <= high")
        unknown = set(blocked_queues or {}) - {q.name for q in queues}
        if unknown:
            raise ValueError(f"blocked_queues names no queue of the emulator: {sorted(unknown)}")
        self._queues = list(queues)
        self._definitions = list(definitions)
        self._events = EventPump(emit, emit_blocked)
        self._scheduler = Scheduler(
            supervisor=self._supervisor,
            on_change=self._events.put,
            workers=workers,
            spot_interruption_rate=spot_interruption_rate,
            spot_interruption_after=(low, high),
            rng=random.Random(seed),
            region=region,
            account=account,
            on_blocked=self._events.put_blocked,
            starve_spot=starve_spot,
            blocked_queues=blocked_queues,
        )
        self._server: BatchServer | None = None
        self._lock = threading.Lock()
        self._serving = False
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Starts the HTTP endpoint, the scheduler and the event emitter; returns the endpoint URL."""
        with self._lock:
            if self._serving or self._stopping:
                raise RuntimeError("the Batch emulator serves once")
            self._serving = True
        self._supervisor.make_log_dir()
        self._server = BatchServer((host, port), self._operations())
        self._server.start()
        self._scheduler.start()
        self._events.start()
        return f"http://{host}:{self._server.port}"

    def stop(self) -> None:
        """Kills every job's process group, then stops the threads and the server. Idempotent.

        Events already queued are still emitted; the endings that stopping causes are not.
        """
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        self._scheduler.stop()
        if self._server is None:
            return
        self._server.stop()
        self._events.close()
        self._supervisor.remove_log_dir()

    @property
    def log_dir(self) -> Path | None:
        """Where the jobs' output goes (one file per log stream); None until `serve`."""
        return self._supervisor.log_dir

    def log_path(self, job_id: str) -> Path | None:
        """The file holding a job's stdout and stderr, once it has started."""
        return self._scheduler.log_path(job_id)

    def log_streams(self) -> list[tuple[str, Path, bool]]:
        """Each started job's log stream name, the file holding its output, and whether it ended."""
        return self._scheduler.log_streams()

    def answer(self, path: str, raw: bytes) -> Reply:
        """A Batch API request (a POST to `path` with the body `raw`) answered as the HTTP endpoint
        answers it: for a front that serves Batch beside other services on one port."""
        return self._operations().answer(path, raw)

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, in submission order, as DescribeJobs details."""
        return self._scheduler.details()

    def interrupt_spot(self, job_id: str) -> bool:
        """Interrupts a running job on a Spot queue now, as a reclaimed Spot instance would."""
        return self._scheduler.interrupt_spot(job_id)

    # -- operations -----------------------------------------------------------------------------------

    def _operations(self) -> Operations:
        return Operations(
            submit_job=self._submit_job,
            describe_jobs=self._describe_jobs,
            list_jobs=self._list_jobs,
            terminate_job=self._terminate_job,
            cancel_job=self._cancel_job,
            describe_job_queues=self._describe_job_queues,
            get_job_queue_snapshot=self._get_job_queue_snapshot,
        )

    def _submit_job(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self._scheduler.submit(parse_submit(body, self._queues, self._definitions))
        return {"jobArn": job.arn, "jobName": job.name, "jobId": job.job_id}

    def _describe_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"jobs": self._scheduler.details(parse_describe(body))}

    def _list_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        summaries, next_token = self._scheduler.summaries(parse_list(body, self._queues))
        result: dict[str, Any] = {"jobSummaryList": summaries}
        if next_token is not None:
            result["nextToken"] = next_token
        return result

    def _terminate_job(self, body: dict[str, Any]) -> dict[str, Any]:
        self._scheduler.end(*parse_end(body), started_too=True)
        return {}

    def _describe_job_queues(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"jobQueues": [shapes.job_queue(q) for q in parse_describe_queues(body, self._queues)]}

    def _get_job_queue_snapshot(self, body: dict[str, Any]) -> dict[str, Any]:
        # FrontOfQueueDetail: the first 100 RUNNABLE jobs; a job's earliestTimeAtPosition is the
        # snapshot's own time here (the emulator keeps no history of positions).
        at = now_ms()
        front = self._scheduler.front(find_queue(self._queues, body.get("jobQueue")), FRONT_OF_QUEUE)
        jobs = [{"jobArn": job.arn, "earliestTimeAtPosition": at} for job in front]
        return {"frontOfQueue": {"jobs": jobs, "lastUpdatedAt": at}}

    def _cancel_job(self, body: dict[str, Any]) -> dict[str, Any]:
        self._scheduler.end(*parse_end(body), started_too=False)
        return {}
