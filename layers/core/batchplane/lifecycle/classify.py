"""Failure classes, from what Batch says about an attempt (docs/architecture.md, "Failure classes").

Prefixes match case-insensitively against the attempt's container reason and status reason and the
job's; "Essential container in task exited" alone means nothing, the exit code decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchplane.models.job import FailureClass

if TYPE_CHECKING:
    from batchplane.models.batch_event import BatchJobDetail

# Our own TerminateJob reasons start with this, so a cancel is never mistaken for a failure.
CANCEL_REASON_PREFIX = "Cancelled by batchplane"

# The worker's exit code for "a pinned input is no longer what the job was made for" (workers/README.md).
# Batch carries nothing else of the container's: no reason of its own, only the exit code. 66 is
# sysexits.h EX_NOINPUT ("an input file did not exist or was not readable").
INPUT_CHANGED_EXIT_CODE = 66

# What batchplane's TerminateJob says when it ends an attempt that waits in vain (lifecycle/waiting.py):
# followed by the wait's reason, MISCONFIGURATION:* or CAPACITY:*, so the FAILED event classifies itself.
ENDED_WAIT_PREFIX = "Ended by batchplane: "
# What Batch says when a job queue's jobStateTimeLimitActions cancel a job (then the reason it matched).
TIME_LIMIT_PREFIX = "Canceled by JobStateTimeLimit action due to reason: "

_WAIT_CLASSES = (
    (FailureClass.MISCONFIGURATION, "misconfiguration:"),
    (FailureClass.CAPACITY_STARVED, "capacity:"),
)

_PREFIXES: list[tuple[FailureClass, tuple[str, ...]]] = [
    (FailureClass.CANCELLED, (CANCEL_REASON_PREFIX.lower(),)),
    (FailureClass.SPOT_INTERRUPTED, ("host ec2 (instance", "your spot task was interrupted")),
    (FailureClass.OUT_OF_MEMORY, ("outofmemoryerror",)),
    (FailureClass.TIMEOUT, ("job attempt duration exceeded timeout",)),
    (
        FailureClass.INFRASTRUCTURE,
        (
            "cannotpullcontainererror",
            "cannotstartcontainererror",
            "resourceinitializationerror",
            "cannotinspectcontainererror",
            "dockertimeouterror",
            "task failed to start",
        ),
    ),
]


def classify(detail: BatchJobDetail) -> FailureClass | None:
    """The failure class of a FAILED attempt; None when the attempt succeeded."""
    if detail.status == "SUCCEEDED":
        return None
    reasons = [r.strip().lower() for r in detail.reasons()]
    waited = wait_class(reasons)
    if waited is not None:
        return waited
    for failure_class, prefixes in _PREFIXES:
        if any(reason.startswith(prefixes) for reason in reasons):
            # "Host EC2 (instance i-…) terminated." is Spot only when the host was terminated.
            if failure_class is FailureClass.SPOT_INTERRUPTED and not _spot_evidence(reasons):
                continue
            return failure_class
    exit_code = detail.exit_code
    if exit_code == INPUT_CHANGED_EXIT_CODE:
        return FailureClass.INPUT_CHANGED
    if exit_code is not None and exit_code != 0:
        return FailureClass.APPLICATION
    return FailureClass.UNKNOWN


def _spot_evidence(reasons: list[str]) -> bool:
    return any(
        r.startswith("your spot task was interrupted")
        or (r.startswith("host ec2 (instance") and "terminated" in r)
        for r in reasons
    )


def wait_class(reasons: list[str]) -> FailureClass | None:
    """MISCONFIGURATION or CAPACITY_STARVED for an attempt ended while it waited in RUNNABLE: by Batch's
    jobStateTimeLimitActions, or by batchplane for Batch's reason; None otherwise. `reasons` lower case."""
    for reason in reasons:
        for wrapper in (ENDED_WAIT_PREFIX.lower(), TIME_LIMIT_PREFIX.lower()):
            if reason.startswith(wrapper):
                code = reason.removeprefix(wrapper)
                for failure_class, prefix in _WAIT_CLASSES:
                    if code.startswith(prefix):
                        return failure_class
    return None
