"""A local AWS Batch: the API subset batchplane calls, job commands run as local processes."""

from batchplane_tools.emulator.emulator import BatchEmulator
from batchplane_tools.emulator.specs import (
    DefinitionSpec,
    FairShareSpec,
    QueueSpec,
    TimeLimitAction,
    parse_block,
)

__all__ = ["BatchEmulator", "DefinitionSpec", "FairShareSpec", "QueueSpec", "TimeLimitAction", "parse_block"]
