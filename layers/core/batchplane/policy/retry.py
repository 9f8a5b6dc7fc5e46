"""Retry and fallback: what to do after a failed attempt, by its failure class. Pure.

Each class has its own budget, so a Spot reclaim never uses up the application's retries. Spot
interruptions move the job to on-demand after N of them, and it stays there; an out-of-memory kill
comes back with more memory, up to the job type's maximum.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from batchplane.models.job import Capacity, FailureClass, Job
from batchplane.models.pins import pins_of
from batchplane.models.policy import JobType

DEFAULT_SPOT_FALLBACK_AFTER = 1


@dataclass(frozen=True)
class Retry:
    delay_seconds: int
    capacity: Capacity
    memory_mib: int
    reason: str
    fell_back: bool = False


@dataclass(frozen=True)
class GiveUp:
    reason: str


Decision = Retry | GiveUp


def failures_of(job: Job, failure_class: FailureClass) -> int:
    """How many attempts of this job failed with this class (the budget is derived, never stored).

    The Spot budget (SPOT_INTERRUPTED) also counts the Spot attempts that starved for capacity: both
    are Spot failing the job, and both move it to on-demand."""
    return sum(1 for a in job.attempts if _counts_as(a.failure_class, a.capacity) is failure_class)


def _counts_as(failure_class: FailureClass | None, capacity: Capacity) -> FailureClass | None:
    if failure_class is FailureClass.CAPACITY_STARVED and capacity is Capacity.SPOT:
        return FailureClass.SPOT_INTERRUPTED
    return failure_class


def backoff_delay(job_type: JobType, retry_number: int, rng: random.Random) -> int:
    """Full jitter: uniform(0, min(cap, base * 2**(n-1))), whole seconds."""
    ceiling = min(job_type.backoff.cap_seconds, job_type.backoff.base_seconds * 2 ** max(0, retry_number - 1))
    return math.ceil(rng.uniform(0, ceiling))


def _what(failure_class: FailureClass, attempt: int, capacity: Capacity, detail: str) -> str:
    verbs = {
        FailureClass.SPOT_INTERRUPTED: "reclaimed on "
        + ("Spot" if capacity is Capacity.SPOT else capacity.value),
        FailureClass.OUT_OF_MEMORY: "ran out of memory",
        FailureClass.TIMEOUT: "timed out",
        FailureClass.INFRASTRUCTURE: "failed to start",
        FailureClass.APPLICATION: "failed",
        FailureClass.UNKNOWN: "failed for an unknown reason",
        FailureClass.CANCELLED: "was cancelled",
        FailureClass.INPUT_CHANGED: "found its input changed",
        FailureClass.MISCONFIGURATION: "could never be placed",
        FailureClass.CAPACITY_STARVED: "got no capacity on "
        + ("Spot" if capacity is Capacity.SPOT else capacity.value),
    }
    return f"attempt {attempt} {verbs[failure_class]} ({detail})"


def _changed(job: Job) -> str:
    """Which input changed: the job's pinned inputs, with the version or ETag each was made for."""
    pins = pins_of(job.artifacts)
    if len(pins) == 1:
        return f"input {pins[0].uri} is no longer what the job was made for ({pins[0].expected})"
    if pins:
        listed = ", ".join(str(pin) for pin in pins)
        return f"one of its inputs is no longer what the job was made for (its log says which): {listed}"
    return "the job pinned no input; its program reported an input of its own as changed"


def decide(job_type: JobType, job: Job, rng: random.Random) -> Decision:
    """Decide after the job's last attempt failed; `job.attempts[-1]` carries its class and reason."""
    attempt = job.attempts[-1]
    failure_class = attempt.failure_class or FailureClass.UNKNOWN
    detail = attempt.status_reason or "no reason given"
    if attempt.exit_code is not None and failure_class in (
        FailureClass.APPLICATION,
        FailureClass.INPUT_CHANGED,
    ):
        detail = f"exit code {attempt.exit_code}: {detail}"
    what = _what(failure_class, attempt.number, attempt.capacity, detail)
    if failure_class is FailureClass.CANCELLED:
        return GiveUp(f"{what}; a cancelled job is not retried")
    if failure_class is FailureClass.INPUT_CHANGED:
        # The pinned version or ETag is gone for good: a retry would meet the same changed object and
        # fail the same way. A newer object is a job of its own (file drop makes one per version).
        return GiveUp(f"{what}; {_changed(job)}; a changed input is not retried")
    if failure_class is FailureClass.MISCONFIGURATION:
        # Batch's own word that no compute environment of the queue can ever run it as asked.
        return GiveUp(f"{what}; a misconfiguration is not retried")
    budget_class = _counts_as(failure_class, attempt.capacity) or failure_class
    rule = job_type.rule(budget_class)
    used = failures_of(job, budget_class)
    if used > rule.max_retries:
        budget = "not retried by policy" if rule.max_retries == 0 else f"{rule.max_retries} retries used"
        return GiveUp(f"{what}; {budget_class.value}: {budget}; giving up")
    exit_codes = rule.exit_codes if failure_class is FailureClass.APPLICATION else None
    if exit_codes is not None and attempt.exit_code not in exit_codes:
        return GiveUp(f"{what}; exit code {attempt.exit_code} is not retryable; giving up")

    capacity, memory, fell_back, extra = job.capacity, job.memory_mib, False, ""
    if failure_class is FailureClass.SPOT_INTERRUPTED and capacity is Capacity.SPOT:
        after = rule.fallback_to_on_demand_after or DEFAULT_SPOT_FALLBACK_AFTER
        if used >= after:
            capacity, fell_back = Capacity.ON_DEMAND, True
    if budget_class is FailureClass.SPOT_INTERRUPTED and failure_class is FailureClass.CAPACITY_STARVED:
        # Spot gave no capacity for as long as the job type waits: on-demand now, no backoff.
        return Retry(
            delay_seconds=0,
            capacity=Capacity.ON_DEMAND,
            memory_mib=memory,
            fell_back=True,
            reason=f"{what}; retrying on {Capacity.ON_DEMAND.value} at once",
        )
    if failure_class is FailureClass.OUT_OF_MEMORY:
        maximum = job_type.resources.memory_mib.max
        if job.memory_mib >= maximum:
            return GiveUp(f"{what}; already at the maximum {maximum} MiB; giving up")
        memory = min(maximum, math.ceil(job.memory_mib * (rule.memory_factor or 2.0)))
        extra = f" with {memory} MiB"
    delay = backoff_delay(job_type, used, rng) if rule.backoff else 0
    return Retry(
        delay_seconds=delay,
        capacity=capacity,
        memory_mib=memory,
        fell_back=fell_back,
        reason=f"{what}; retrying on {capacity.value}{extra} in {delay} s",
    )


def failure_class_in(reason: str) -> FailureClass | None:
    """The failure class a decision's reason (`_what`'s words: "attempt 2 ran out of memory (...)")
    speaks of; None for a reason `_what` did not write. Read back from `_what` itself, so a class it
    learns to name is read back too."""
    head = reason.partition(" (")[0]
    number, _, said = head.removeprefix("attempt ").partition(" ")
    if not number.isdigit():
        return None
    for failure_class in FailureClass:
        for capacity in Capacity:
            if _what(failure_class, 0, capacity, "").partition(" (")[0] == f"attempt 0 {said}":
                return failure_class
    return None
