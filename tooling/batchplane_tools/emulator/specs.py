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
class QueueSpec:
    name: str
    arn: str
    capacity: str  # "SPOT" or "ON_DEMAND"
    fair_share: FairShareSpec | None = None  # None: a FIFO queue


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
