"""What a write owes the outside world: the alerts and job events committed with it (the outbox).

A decision and the side effects it owes are one write: the job item carries them in its `outbox`,
and the jobs table's stream hands every write to the outbox function, which publishes them at least
once (functions/outbox/app.py). Each owed event has a stable id, so a consumer can drop a duplicate.
"""

from collections.abc import Sequence
from enum import StrEnum

from pydantic import ConfigDict, Field

from batchplane.models.base import Model


class OwedKind(StrEnum):
    ALERT = "alert"  # an SNS message to the people on call
    JOB_EVENT = "job_event"  # an event on the job event bus, for programs


class JobEventType(StrEnum):
    """The detail-types batchplane publishes on its job event bus (source "batchplane")."""

    SUCCEEDED = "Job Succeeded"
    FAILED = "Job Failed"
    RETRYING = "Job Retrying"
    CANCELLED = "Job Cancelled"


class OwedEvent(Model):
    """One side effect a write owes: published after the write, at least once, under `event_id`."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(description="stable: every delivery of this event carries the same id")
    kind: OwedKind
    subject: str = Field(description="an alert's subject; a job event's detail-type")


def event_id(job_id: str, version: int, kind: OwedKind) -> str:
    """`<job_id>:<version>:<kind>`. `version` is the job version the decision was made on: the write is
    conditioned on it, so at most one decision is ever written per version, and it owes at most one
    event of each kind."""
    return f"{job_id}:{version}:{kind.value}"


def newly_owed(new: Sequence[OwedEvent], old: Sequence[OwedEvent]) -> list[OwedEvent]:
    """What one write added to the outbox: the events of its new image that its old image did not hold.

    A write that leaves the outbox as it was (an attempt's progress, a submission, the sweeper's touch)
    adds nothing, so only the write that made a decision ever delivers that decision's events.
    """
    before = {event.event_id for event in old}
    return [event for event in new if event.event_id not in before]
