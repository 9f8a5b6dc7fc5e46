"""The job table and what moves jobs through it: the state steps, the worker slots, the timeouts,
Spot interruptions (chaos or asked for), TerminateJob and CancelJob, and the state-change events.

Jobs move SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING -> SUCCEEDED | FAILED as Batch moves
them; every transition from RUNNABLE on goes to `on_change` as a "Batch Job State Change" detail. A job
that cannot be placed (its queue blocked, or Spot starved) stays RUNNABLE with Batch's reason as its
statusReason, goes to `on_blocked` as a "Batch Job Queue Blocked" detail, and is cancelled by its
queue's jobStateTimeLimitActions as Batch does.
One lock guards the table: the HTTP threads read and change it, the scheduler thread steps it.
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from batchplane_tools.emulator import arrays, shapes
from batchplane_tools.emulator.fairshare import FairShare
from batchplane_tools.emulator.job import EMITTED, ENDED, NOT_STARTED, Job, SubmitRequest, now_ms
from batchplane_tools.emulator.requests import ClientException, ListRequest
from batchplane_tools.emulator.specs import CAPACITIES, STARVED_SPOT_REASON, QueueSpec
from batchplane_tools.emulator.supervisor import Supervisor

logger = logging.getLogger(__name__)

ESSENTIAL_CONTAINER_EXITED = "Essential container in task exited"
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
TASK_FAILED_TO_START = "Task failed to start"
STOPPED_REASON = "Batch emulator stopped"
TIME_LIMIT_REASON = "Canceled by JobStateTimeLimit action due to reason: "
# Batch waits 30 s between SIGTERM and SIGKILL; locally that would only slow everything down.
TERMINATE_GRACE_SECONDS = 2.0
STATE_STEP_SECONDS = 0.02  # SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING, at least this apart
TICK_SECONDS = 0.01
MEMORY_POLL_SECONDS = 0.05


class Scheduler:
    """Runs the submitted jobs on `workers` slots, one scheduler thread stepping them every tick."""

    def __init__(
        self,
        *,
        supervisor: Supervisor,
        on_change: Callable[[dict[str, Any]], None],
        workers: int,
        spot_interruption_rate: float,
        spot_interruption_after: tuple[float, float],
        rng: random.Random,
        region: str,
        account: str,
        on_blocked: Callable[[dict[str, Any]], None] | None = None,
        starve_spot: bool = False,
        blocked_queues: dict[str, str] | None = None,
    ) -> None:
        self._supervisor = supervisor
        self._on_change = on_change
        self._on_blocked = on_blocked
        self._starve_spot = starve_spot
        self._blocked = dict(blocked_queues or {})  # queue name -> the RUNNABLE reason its jobs get
        self._workers = workers
        self._spot_rate = spot_interruption_rate
        self._spot_after = spot_interruption_after
        self._rng = rng
        self._region = region
        self._account = account
        self._clusters = {capacity: str(uuid.uuid4()) for capacity in CAPACITIES}
        self._fair_share = FairShare()

        self._cond = threading.Condition(threading.Lock())
        self._jobs: dict[str, Job] = {}
        self._order: list[Job] = []
        self._live: list[Job] = []  # not ended yet, in submission order
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="batch-emulator-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Refuses new jobs, then kills every job's process group; their endings are not emitted."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- the table, for the operations and BatchEmulator's own methods ---------------------------------

    def submit(self, request: SubmitRequest) -> Job:
        """A single job, or an array job's parent with its children spawned (in PENDING, each then
        stepped, placed and run like a single job; the parent follows them, arrays.py)."""
        job_id = str(uuid.uuid4())
        with self._cond:
            if self._stopping:
                raise ClientException("The local Batch emulator is stopping")
            job = self._add(request, job_id)
            if request.array_size is None:
                self._live.append(job)
            for index in range(request.array_size or 0):
                child = self._add(replace(request, array_size=None), arrays.child_id(job_id, index))
                child.parent, child.array_index, child.status = job, index, "PENDING"
                job.children.append(child)
                arrays.counted(job, None, "PENDING")
                self._live.append(child)
            self._cond.notify_all()
        return job

    def _add(self, request: SubmitRequest, job_id: str) -> Job:
        job = Job(
            **{f.name: getattr(request, f.name) for f in fields(request)},
            seq=len(self._order),
            job_id=job_id,
            arn=f"arn:aws:batch:{self._region}:{self._account}:job/{job_id}",
            created_at=now_ms(),
            due=time.monotonic() + STATE_STEP_SECONDS,
        )
        self._jobs[job_id] = job
        self._order.append(job)
        return job

    def details(self, job_ids: list[Any] | None = None) -> list[dict[str, Any]]:
        """The jobs asked for that exist (all, in submission order, if none are asked for)."""
        with self._cond:
            if job_ids is None:
                return [shapes.detail(job) for job in self._order]
            return [shapes.detail(self._jobs[i]) for i in job_ids if i in self._jobs]

    def summaries(self, request: ListRequest) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ListJobs, and the token of the next page if there is one."""
        with self._cond:
            # Newest first; the token is the submission number to continue below, so jobs submitted
            # between pages never shift the pages already handed out.
            found: list[Job] = []
            for job in reversed(self._listable(request)):
                if request.before is not None and job.seq >= request.before:
                    continue
                if request.match(job):
                    found.append(job)
                    if len(found) > request.limit:
                        break
            page = found[: request.limit]
            listed = [shapes.summary(job) for job in page]
        return listed, str(page[-1].seq) if len(found) > request.limit else None

    def _listable(self, request: ListRequest) -> list[Job]:
        """An array job's children (none for an id of no array job), or a queue's jobs, which list
        an array job by its parent alone."""
        if request.array_job_id is not None:
            parent = self._jobs.get(request.array_job_id)
            return parent.children if parent is not None else []
        return [job for job in self._order if job.queue is request.queue and job.parent is None]

    def front(self, queue: QueueSpec, most: int) -> list[Job]:
        """The queue's first `most` RUNNABLE jobs in the order its rule would start them (FIFO, or fair
        share: each job taken counts as running for the picks after it, as it would once started)."""
        with self._cond:
            waiting = [job for job in self._live if job.queue is queue and job.status == "RUNNABLE"]
            running = [job for job in self._live if job.status in ("STARTING", "RUNNING")]
            now = time.monotonic()
            order: list[Job] = []
            while waiting and len(order) < most:
                job = self._fair_share.next_of_queue(waiting, running, now)
                waiting.remove(job)
                running.append(job)
                order.append(job)
            return order

    def log_path(self, job_id: str) -> Path | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return job.log_path if job is not None else None

    def log_streams(self) -> list[tuple[str, Path, bool]]:
        """Each started job's log stream, its file and whether the job has ended, in submission order."""
        with self._cond:
            return [
                (job.log_stream_name, job.log_path, job.status in ENDED)
                for job in self._order
                if job.log_stream_name is not None and job.log_path is not None
            ]

    def end(self, job_id: str, reason: str, *, started_too: bool) -> None:
        """TerminateJob (started_too) or CancelJob: jobs not started yet fail at once. An array job's
        parent ends all its children (it then follows them); a child, only itself."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:
                raise ClientException(f"Job {job_id} does not exist")
            if job.children and job.status not in ENDED:  # before its children end: its last event
                job.status_reason = reason
                job.is_terminated = job.is_terminated or started_too
                job.is_cancelled = job.is_cancelled or not started_too
            for each in job.children or [job]:
                self._end(each, reason, started_too=started_too)

    def _end(self, job: Job, reason: str, *, started_too: bool) -> None:
        if job.status in NOT_STARTED:
            job.is_cancelled = True
            self._finish(job, "FAILED", reason)
        elif job.status in ENDED or not started_too or job.cause is not None:
            pass  # CancelJob leaves started jobs alone; a job already being ended keeps its cause
        elif job.process is None:  # STARTING, not spawned yet
            job.is_terminated = True
            job.attempts.append(shapes.attempt(job, reason))
            self._finish(job, "FAILED", reason)
        else:
            job.is_terminated = True
            job.cause, job.cause_reason = "terminate", reason
            self._supervisor.terminate(job.process.pid)
            job.kill_at = time.monotonic() + TERMINATE_GRACE_SECONDS

    def interrupt_spot(self, job_id: str) -> bool:
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

    # -- state changes (all under the lock) -----------------------------------------------------------

    def _move(self, job: Job, status: str) -> None:
        was, job.status = job.status, status
        if status in EMITTED and not self._stopping:
            self._on_change(shapes.detail(job))
        if job.parent is not None:
            arrays.counted(job.parent, was, status)
            self._follow(job.parent)

    def _follow(self, parent: Job) -> None:
        """An array job's parent takes the status its children give it, with an event of its own."""
        status = arrays.followed_status(parent)
        if status == parent.status:
            return
        if status in ENDED:
            parent.stopped_at = now_ms()
        parent.status = status
        if not self._stopping:
            self._on_change(shapes.detail(parent))

    def _finish(self, job: Job, status: str, status_reason: str) -> None:
        job.status_reason = status_reason
        job.stopped_at = job.attempts[-1]["stoppedAt"] if job.attempts else now_ms()
        job.process = None
        job.timeout_at = job.spot_at = job.kill_at = None
        if job.started_at is not None:  # its share used what it ran
            self._fair_share.ran(job, (job.stopped_at - job.started_at) / 1000, time.monotonic())
        if job in self._live:
            self._live.remove(job)
        self._move(job, status)
        if job.log_path is not None:
            self._supervisor.retire_log(job.log_path)

    def _interrupt(self, job: Job) -> None:
        """The Spot instance is reclaimed: the whole task dies at once, with no exit code to report."""
        assert job.process is not None
        instance = f"i-{self._rng.getrandbits(68):017x}"
        job.cause, job.cause_reason = "spot", f"Host EC2 (instance {instance}) terminated."
        self._supervisor.kill(job.process.pid)

    def _start(self, job: Job) -> None:
        """RUNNABLE -> STARTING: a task is placed on a container instance."""
        cluster = f"AWSBatch-{job.compute_environment}-{self._clusters[job.queue.capacity]}"
        prefix = f"arn:aws:ecs:{self._region}:{self._account}"
        job.task_arn = f"{prefix}:task/{cluster}/{uuid.uuid4().hex}"
        job.container_instance_arn = f"{prefix}:container-instance/{cluster}/{uuid.uuid4().hex}"
        job.due = time.monotonic() + STATE_STEP_SECONDS
        self._move(job, "STARTING")

    def _spawn(self, job: Job) -> None:
        """STARTING -> RUNNING: the container's command runs in its own process group."""
        assert job.task_arn is not None
        task_id = job.task_arn.rsplit("/", 1)[1]
        stream = f"{job.definition.name}/default/{task_id}"
        try:
            process, log_path = self._supervisor.spawn(job, stream)
        except OSError as error:
            job.reason = f"CannotStartContainerError: {error}"[:255]
            job.attempts.append(shapes.attempt(job, TASK_FAILED_TO_START))
            self._finish(job, "FAILED", TASK_FAILED_TO_START)
            return
        now = time.monotonic()
        job.process = process
        job.log_path = log_path
        job.log_stream_name = stream
        job.started_at = now_ms()
        if job.timeout_seconds is not None:
            job.timeout_at = now + job.timeout_seconds
        if job.queue.capacity == "SPOT" and self._spot_rate > 0 and self._rng.random() < self._spot_rate:
            job.spot_at = now + self._rng.uniform(*self._spot_after)
        self._move(job, "RUNNING")

    def _exited(self, job: Job, wait_status: int) -> None:
        """The container's main process ended: the job fails or succeeds as Batch reports the cause."""
        assert job.process is not None
        code = self._supervisor.collect(job.process, wait_status)
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
        job.attempts.append(shapes.attempt(job, status_reason))
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
                    self._step(now)
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

    def _step(self, now: float) -> None:
        """Moves each job that is due one state on; a RUNNABLE job starts only on a free slot, the
        one its queue's rule picks (fairshare.py: FIFO, or fair share by usage, weight, priority)."""
        active = [job for job in self._live if job.status in ("STARTING", "RUNNING")]
        waiting: list[Job] = []
        for job in list(self._live):
            if now < job.due:
                continue
            if job.status == "SUBMITTED":
                job.due = now + STATE_STEP_SECONDS
                self._move(job, "PENDING")
            elif job.status == "PENDING":
                job.due = now + STATE_STEP_SECONDS
                self._move(job, "RUNNABLE")
            elif job.status == "RUNNABLE" and (reason := self._wait_reason(job)) is not None:
                self._wait(job, reason, now)
            elif job.status == "RUNNABLE":
                waiting.append(job)
            elif job.status == "STARTING" and job.process is None:
                self._spawn(job)
        while waiting and len(active) < self._workers:
            job = self._fair_share.pick(waiting, active, now)
            waiting.remove(job)
            active.append(job)
            self._start(job)

    def _wait_reason(self, job: Job) -> str | None:
        """Why the job cannot be placed, as Batch says it; None: it can."""
        if job.queue.name in self._blocked:
            return self._blocked[job.queue.name]
        if self._starve_spot and job.queue.capacity == "SPOT":
            return STARVED_SPOT_REASON
        return None

    def _wait(self, job: Job, reason: str, now: float) -> None:
        """The job blocks its queue: Batch gives the reason as its statusReason with a "Batch Job
        Queue Blocked" event (once per reason), and the queue's time limit actions cancel it."""
        if job.status_reason != reason:
            job.status_reason, job.waiting_since = reason, now
            if self._on_blocked is not None and not self._stopping:
                self._on_blocked(shapes.detail(job))
        code = reason.split(" - ", 1)[0]
        since = job.waiting_since if job.waiting_since is not None else now
        for action in job.queue.time_limit_actions:
            if action.reason == code and now - since >= action.max_time_seconds:
                job.is_cancelled = True
                self._finish(job, "FAILED", f"{TIME_LIMIT_REASON}{code}")
                return

    def _supervise(self, now: float) -> None:
        """Reaps the ended main processes; signals the ones past their grace, timeout or Spot time."""
        for job in list(self._live):
            if job.process is None:
                continue
            pid = job.process.pid
            wait_status = self._supervisor.poll(pid)
            if wait_status is not None:
                self._exited(job, wait_status)
            elif job.kill_at is not None and now >= job.kill_at:
                job.kill_at = None
                self._supervisor.kill(pid)
            elif job.cause is None and job.timeout_at is not None and now >= job.timeout_at:
                job.cause = "timeout"
                self._supervisor.terminate(pid)
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
        usage = self._supervisor.memory_kib(set(limits))
        with self._cond:
            for job in self._live:
                if job.process is None or job.cause is not None:
                    continue
                pgid = job.process.pid
                if usage.get(pgid, 0) > limits.get(pgid, sys.maxsize):
                    job.cause = "oom"
                    self._supervisor.kill(pgid)

    def _kill_all(self) -> None:
        """On stop: SIGKILL every job's group and reap its main process."""
        with self._cond:
            running = [job for job in self._live if job.process is not None]
            for job in running:
                assert job.process is not None
                if job.cause is None:
                    job.cause, job.cause_reason = "stop", STOPPED_REASON
                self._supervisor.kill(job.process.pid)
        for job in running:
            process = job.process
            wait_status = self._supervisor.reap(process.pid) if process is not None else None
            if wait_status is not None:
                with self._cond:
                    if job.process is not None:
                        self._exited(job, wait_status)
