"""What the emulator serves: its job queues and job definitions, as the local stack provisions them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CAPACITIES = frozenset({"SPOT", "ON_DEMAND"})
_REVISION = re.compile(r":\d+$")


@dataclass(frozen=True)
class FairShareSpec:
    """A queue's fair-share scheduling policy (FairsharePolicy), as the emulator applies it."""

    share_decay_seconds: int = 0  # 0: Batch's minimum window, 600 s
    compute_reservation: int = 0  # kept for DescribeJobQueues' sake; the emulator reserves nothing
    # ShareDistribution: share identifier (or prefix ending in *) -> weight factor; others weigh 1.0.
    weights: dict[str, float] = field(default_factory=dict)

    def weight(self, share: str) -> float:
        if share in self.weights:
            return self.weights[share]
        prefixes = [p for p in self.weights if p.endswith("*") and share.startswith(p[:-1])]
        return self.weights[max(prefixes, key=len)] if prefixes else 1.0


@dataclass(frozen=True)
class TimeLimitAction:
    """A job queue's jobStateTimeLimitAction: CANCEL a job RUNNABLE for `reason` this long."""

    reason: str  # a RUNNABLE reason's code, e.g. CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY
    max_time_seconds: float


@dataclass(frozen=True)
class QueueSpec:
    name: str
    arn: str
    capacity: str  # "SPOT" or "ON_DEMAND"
    fair_share: FairShareSpec | None = None  # None: a FIFO queue
    time_limit_actions: tuple[TimeLimitAction, ...] = ()


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
    scheduling_priority: int | None = None  # a fair-share queue's default priority for its jobs

    @classmethod
    def running(cls, name: str, command: list[str], *, memory_mib: int = 256) -> DefinitionSpec:
        """A definition that runs `command` on 1 vCPU, without parameters, environment or timeout."""
        return cls(
            name=name,
            arn=f"arn:aws:batch:us-east-1:123456789012:job-definition/{name}:1",
            command=command,
            parameters={},
            vcpus=1,
            memory_mib=memory_mib,
            timeout_seconds=0,
            environment={},
        )

    @property
    def revision(self) -> int:
        return int(self.arn.rsplit(":", 1)[1])


def check_specs(queues: list[QueueSpec], definitions: list[DefinitionSpec]) -> None:
    """Raises ValueError for a queue or a definition the emulator could not serve."""
    for spec in queues:
        if spec.capacity not in CAPACITIES:
            raise ValueError(f"queue {spec.name}: capacity is SPOT or ON_DEMAND, not {spec.capacity}")
    for definition in definitions:
        if not _REVISION.search(definition.arn):
            raise ValueError(f"job definition {definition.name}: arn must end with :<revision>")


# What Batch gives as a RUNNABLE job's statusReason (docs: "Jobs stuck in a RUNNABLE status").
STARVED_SPOT_REASON = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - "
    "Service cannot fulfill the capacity requested for instance type [optimal]"
)
BLOCKED_REASON = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
    "higher than that can be met by the CE(s) attached to the job queue."
)


def parse_block(text: str, queues: list[QueueSpec]) -> tuple[str, str]:
    """`NAME[:REASON]` (`--block-queue`) as (queue name, RUNNABLE reason). NAME is a queue's name or its
    end after a dash (`on-demand`); REASON a code (`MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS`) or a
    whole reason; none: MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT."""
    name, _, reason = text.partition(":")
    found = [q.name for q in queues if q.name == name or q.name.endswith(f"-{name}")]
    if len(found) != 1:
        known = ", ".join(q.name for q in queues)
        raise ValueError(f"--block-queue {text}: {name!r} names no one job queue (queues: {known})")
    if not reason:
        reason = BLOCKED_REASON
    elif " - " not in reason:
        reason = f"{reason} - blocked by the Batch emulator (--block-queue)"
    return found[0], reason
