"""One submitted job as the emulator keeps it, and the statuses a job goes through."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchplane_tools.emulator.specs import DefinitionSpec, QueueSpec

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
NOT_STARTED = frozenset({"SUBMITTED", "PENDING", "RUNNABLE"})
# The transitions that reach EventBridge as "Batch Job State Change" (none for SUBMITTED or PENDING).
EMITTED = frozenset({"RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"})
ENDED = frozenset({"SUCCEEDED", "FAILED"})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SubmitRequest:
    """A SubmitJob that Batch would accept, with the definition's defaults and overrides applied."""

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
    share_identifier: str | None  # a fair-share queue's jobs have one; a FIFO queue's none
    scheduling_priority: int  # within its share, higher starts first (fair-share queues only)
    array_size: int | None  # arrayProperties.size: an array job of this many children; None: a single job


@dataclass
class Job(SubmitRequest):
    """A submitted job: what it was submitted with, and where it stands."""

    seq: int  # submission number: ListJobs pages by it
    job_id: str
    arn: str
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
    waiting_since: float | None = None  # monotonic time its current RUNNABLE reason was given
    is_cancelled: bool = False
    is_terminated: bool = False
    # An array job: the parent lists its children; a child names its parent and its index.
    children: list[Job] = field(default_factory=list)
    child_statuses: dict[str, int] = field(default_factory=dict)  # a parent's children by status
    parent: Job | None = None
    array_index: int | None = None

    @property
    def compute_environment(self) -> str:
        return "local-spot" if self.queue.capacity == "SPOT" else "local-on-demand"
