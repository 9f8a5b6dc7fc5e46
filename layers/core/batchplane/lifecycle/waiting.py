"""An attempt that waits in vain: what Batch's RUNNABLE reason and the time waited decide. Pure.

Batch gives a RUNNABLE job at the head of its queue a reason (its statusReason, also carried by a
"Batch Job Queue Blocked" event): `MISCONFIGURATION:*` means no compute environment of the queue can
ever run it as asked, `CAPACITY:*` that the capacity it needs is not to be had now. The first ends the
attempt at once; the second ends a Spot attempt once it has waited longer than its job type allows
(`capacity_wait.spot_fallback_after_seconds`), so the job moves to on-demand. Either way the attempt
is ended with TerminateJob and a reason that `lifecycle/classify.py::wait_class` reads back.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchplane.lifecycle.classify import ENDED_WAIT_PREFIX
from batchplane.models.job import Capacity
from batchplane.models.policy import JobType

MISCONFIGURATION = "MISCONFIGURATION:"
CAPACITY = "CAPACITY:"
# batchplane's own code for a Spot attempt that Batch gave no reason for and that never started.
NO_START = "CAPACITY:NO_START"


@dataclass(frozen=True)
class EndWait:
    """End the waiting attempt: TerminateJob with `reason`, then decide as for its FAILED event."""

    reason: str


def wait_code(status_reason: str | None) -> str | None:
    """Batch's code in a RUNNABLE reason: `CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot
    ...` -> `CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY`; None without a reason."""
    if not status_reason or not status_reason.strip():
        return None
    return status_reason.split(" - ", 1)[0].strip().upper()


def is_misconfiguration(status_reason: str | None) -> bool:
    return (wait_code(status_reason) or "").startswith(MISCONFIGURATION)


def end_of_wait(
    *, status_reason: str | None, capacity: Capacity, waited_seconds: int, job_type: JobType | None
) -> EndWait | None:
    """Whether a RUNNABLE attempt's wait ends now, and with what reason; None: it goes on waiting."""
    if status_reason is not None and status_reason.startswith(ENDED_WAIT_PREFIX):
        # Batch shows our own TerminateJob's reason on a job not FAILED yet: that wait was ended
        # (by a handler that died before its decision was saved); end it the same way.
        return EndWait(status_reason)
    if is_misconfiguration(status_reason):
        return EndWait(f"{ENDED_WAIT_PREFIX}{status_reason}")
    code = wait_code(status_reason)
    limit = job_type.capacity_wait.spot_fallback_after_seconds if job_type is not None else None
    if (
        capacity is Capacity.SPOT
        and limit is not None
        and waited_seconds >= limit
        and (code is None or code.startswith(CAPACITY))
    ):
        because = status_reason if code is not None else f"{NO_START} - Batch gave no reason"
        return EndWait(
            f"{ENDED_WAIT_PREFIX}{because}; not started on Spot in {waited_seconds} s "
            f"(spot_fallback_after_seconds: {limit})"
        )
    return None
