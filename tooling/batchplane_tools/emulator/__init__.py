"""A local AWS Batch: the API subset batchplane calls, job commands run as local processes."""

from batchplane_tools.emulator.batch_emulator import BatchEmulator, DefinitionSpec, QueueSpec

__all__ = ["BatchEmulator", "DefinitionSpec", "QueueSpec"]
