"""What a set of jobs adds up to: how many in each state, the retries by the failure class that caused
them, and the Spot fallbacks. Pure: the jobs come as a listing reads them (each with the decisions
its own item holds, the last 8)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from batchplane.models.job import Capacity, FailureClass, Job, JobStatus
from batchplane.policy.retry import failure_class_in

RETRIED = "retried"  # lifecycle/attempts.py::apply_decision's entry for a retry
FELL_BACK = "fell_back"  # ... and for a move from Spot to on-demand


@dataclass(frozen=True)
class Summary:
    jobs: int
    by_status: dict[JobStatus, int]
    retries_by_failure_class: dict[FailureClass, int]
    spot_fallbacks: int
    jobs_fallen_back: list[str] = field(default_factory=list)


def summarize(jobs: Iterable[Job]) -> Summary:
    statuses: Counter[JobStatus] = Counter()
    retries: Counter[FailureClass] = Counter()
    fallbacks = 0
    fallen_back: list[str] = []
    for job in jobs:
        statuses[job.status] += 1
        for entry in job.history:
            if entry.event == RETRIED:
                failure_class = failure_class_in(entry.reason)
                retries[failure_class or FailureClass.UNKNOWN] += 1
            elif entry.event == FELL_BACK and entry.reason.startswith(f"moving from {Capacity.SPOT.value}"):
                fallbacks += 1
                if job.job_id not in fallen_back:
                    fallen_back.append(job.job_id)
    return Summary(
        jobs=sum(statuses.values()),
        by_status={status: statuses[status] for status in JobStatus},
        retries_by_failure_class={c: retries[c] for c in FailureClass if retries[c]},
        spot_fallbacks=fallbacks,
        jobs_fallen_back=fallen_back,
    )
