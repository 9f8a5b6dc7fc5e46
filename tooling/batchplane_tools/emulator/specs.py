"""What the emulator serves: its job queues and job definitions, as the local stack provisions them."""

from __future__ import annotations

import re
from dataclasses import dataclass

CAPACITIES = frozenset({"SPOT", "ON_DEMAND"})
_REVISION = re.compile(r":\d+$")


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


def check_specs(queues: list[QueueSpec], definitions: list[DefinitionSpec]) -> None:
    """Raises ValueError for a queue or a definition the emulator could not serve."""
    for spec in queues:
        if spec.capacity not in CAPACITIES:
            raise ValueError(f"queue {spec.name}: capacity is SPOT or ON_DEMAND, not {spec.capacity}")
    for definition in definitions:
        if not _REVISION.search(definition.arn):
            raise ValueError(f"job definition {definition.name}: arn must end with :<revision>")
