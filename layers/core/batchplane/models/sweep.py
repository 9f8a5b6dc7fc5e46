"""What the sweeper keeps between invocations.

A sweep reads every unfinished job, shard by shard of the by_activity index. An invocation that runs
short of time stops after a whole chunk and leaves a `SweepCursor`: the next invocation goes on from
there, so every job is looked at once per sweep however many there are, and never twice.
"""

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.time import UtcDatetime


class SweepCursor(Model):
    """A sweep that an invocation left unfinished: where each shard goes on, and what was counted."""

    model_config = ConfigDict(extra="forbid")

    started_at: UtcDatetime
    done: list[int] = Field(default_factory=list, description="shards read to their end")
    resume: dict[int, str] = Field(
        default_factory=dict, description="a shard's store token: go on after the last job looked at"
    )
    counts: dict[str, int] = Field(
        default_factory=dict, description="unfinished jobs so far, by `<status>|<job_type>`"
    )
    invocations: int = Field(default=1, ge=1, description="invocations this sweep has taken so far")
