"""The dispatch message: everything the dispatcher needs to submit one attempt, so it reads nothing."""

from typing import Self

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.job import Capacity, Job
from batchplane.models.pins import InputPin, pins_of


class DispatchMessage(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)

    job_id: str
    attempt: int = Field(ge=1)
    tenant: str
    job_type: str
    parameters: dict[str, str]
    vcpus: int = Field(ge=1)
    memory_mib: int = Field(ge=1)
    capacity: Capacity
    output_prefix: str
    # What each input was made for (its version, or its ETag), so the worker reads exactly that.
    # A message from before pins has none: its attempt reads the inputs as they are.
    inputs: list[InputPin] = Field(default_factory=list)
    # The job's fair share; a message from before fair share has neither (dispatch derives them).
    share: str | None = None
    priority: int | None = None
    # Set by the sweeper: a Batch job of this attempt's name may exist already; look before submitting.
    look_first: bool = False
    # The first attempt of a coalescible job (Job.coalesce): when the job was made (epoch seconds). Such
    # a message goes to the array queue, where the coalescer holds it at most the type's max wait.
    coalesce_since: float | None = None

    @classmethod
    def next_attempt_of(cls, job: Job, *, look_first: bool = False) -> Self:
        # The last attempt's number, not the count: a job read from its item alone (a listing,
        # the sweeper) may hold only its latest attempts.
        return cls.of_attempt(
            job, (job.attempts[-1].number if job.attempts else 0) + 1, look_first=look_first
        )

    @classmethod
    def of_attempt(cls, job: Job, number: int, *, look_first: bool = False) -> Self:
        """The message of attempt `number` (the sweeper's for an attempt claimed by an array that was
        never recorded as submitted: to the array queue, where the coalescer resumes its array)."""
        # Retries are never coalesced: a failed child goes again alone, as a single job.
        since = job.created_at.timestamp() if job.coalesce and number == 1 else None
        return cls(
            look_first=look_first,
            job_id=job.job_id,
            attempt=number,
            tenant=job.tenant,
            job_type=job.job_type,
            parameters=job.parameters,
            vcpus=job.vcpus,
            memory_mib=job.memory_mib,
            capacity=job.capacity,
            output_prefix=job.output_prefix,
            inputs=pins_of(job.artifacts),
            share=job.share,
            priority=job.priority,
            coalesce_since=since,
        )
