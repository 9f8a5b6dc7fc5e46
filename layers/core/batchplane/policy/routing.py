"""Routing: which queue, job definition, resources and timeout an attempt gets. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from batchplane.models.job import Capacity
from batchplane.models.policy import JobType


@dataclass(frozen=True)
class Queues:
    spot: str
    on_demand: str

    def for_capacity(self, capacity: Capacity) -> str:
        return self.spot if capacity is Capacity.SPOT else self.on_demand


@dataclass(frozen=True)
class Route:
    queue: str
    job_definition: str
    capacity: Capacity
    vcpus: int
    memory_mib: int
    timeout_seconds: int
    share: str  # SubmitJob's shareIdentifier: a fair-share queue refuses a job without one
    priority: int  # schedulingPriorityOverride


def job_name(job_id: str, attempt: int) -> str:
    """Deterministic Batch job name, so a submitted-but-unrecorded attempt can be found again."""
    return f"bp-{job_id}-{attempt}"


def parse_job_name(name: str) -> tuple[str, int] | None:
    """(job_id, attempt) from a name made by job_name; None for jobs batchplane did not submit."""
    if not name.startswith("bp-"):
        return None
    job_id, _, attempt = name[3:].rpartition("-")
    if not job_id or not attempt.isdigit():
        return None
    return job_id, int(attempt)


ARRAY_NAME_PREFIX = "bp-array-"
_ARRAY_HASH_LENGTH = 24
_HEX = frozenset("0123456789abcdef")


def parse_array_name(name: str) -> str | None:
    """The name if it is one of batchplane's array jobs' ("bp-array-" + 24 lowercase hex), else None.

    Read before parse_job_name: an array name whose hash happens to be all digits would otherwise
    read as job "array", attempt <digits>."""
    digest = name.removeprefix(ARRAY_NAME_PREFIX)
    if digest == name or len(digest) != _ARRAY_HASH_LENGTH or not set(digest) <= _HEX:
        return None
    return name


def child_job_id(parent_job_id: str, index: int) -> str:
    """Batch's id of an array job's child: the parent's id and the child's index."""
    return f"{parent_job_id}:{index}"


def route(
    job_type: JobType,
    *,
    capacity: Capacity,
    vcpus: int,
    memory_mib: int,
    queues: Queues,
    definition_prefix: str,
    share: str,
    priority: int,
) -> Route:
    # An ON_DEMAND_ONLY job type never lands on Spot, whatever the message asks for.
    if job_type.capacity.value == "ON_DEMAND_ONLY":
        capacity = Capacity.ON_DEMAND
    definition = job_type.job_definition
    if not definition.startswith("arn:"):
        definition = f"{definition_prefix}{definition}"
    return Route(
        queue=queues.for_capacity(capacity),
        job_definition=definition,
        capacity=capacity,
        vcpus=min(vcpus, job_type.resources.vcpus.max),
        memory_mib=min(memory_mib, job_type.resources.memory_mib.max),
        timeout_seconds=job_type.timeout_seconds,
        share=share,
        priority=priority,
    )
