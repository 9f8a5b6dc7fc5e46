"""Array jobs as Batch runs them: a parent with a normal job id, children "<parent>:<index>" that share
its request and each run as a job of their own, and the parent's status, which follows theirs.

Batch's rule (User Guide, "Array jobs"): the children are spawned in PENDING; the parent is PENDING once
a child is RUNNABLE, SUCCEEDED once every child succeeded, FAILED once every child ended and one of them
failed. Pure: the scheduler makes the jobs and moves them; this names what they are.
"""

from __future__ import annotations

from typing import Any

from batchplane_tools.emulator.job import ENDED, STATUSES, Job


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}:{index}"


def status_summary(parent: Job) -> dict[str, int]:
    """How many of the parent's children are in each status (every status named, as Batch does)."""
    return {status: parent.child_statuses.get(status, 0) for status in STATUSES}


def followed_status(parent: Job) -> str:
    """The status the parent has, given its children's."""
    counts, size = parent.child_statuses, len(parent.children)
    if sum(counts.get(status, 0) for status in ENDED) == size:
        return "SUCCEEDED" if counts.get("SUCCEEDED", 0) == size else "FAILED"
    if parent.status == "SUBMITTED" and counts.get("SUBMITTED", 0) + counts.get("PENDING", 0) == size:
        return "SUBMITTED"
    return "PENDING"


def counted(parent: Job, was: str | None, now: str) -> None:
    """A child moved from `was` (None: just spawned) to `now`: the parent's counts follow, so that its
    status and summary cost no walk over 10,000 children at each step."""
    if was is not None:
        parent.child_statuses[was] -= 1
    parent.child_statuses[now] = parent.child_statuses.get(now, 0) + 1


def detail_properties(job: Job) -> dict[str, Any] | None:
    """DescribeJobs' arrayProperties (ArrayPropertiesDetail): a parent's size and its children's
    statuses, a child's index; None for a single job."""
    if job.array_index is not None:
        return {"index": job.array_index}
    if job.array_size is not None:
        return {"statusSummary": status_summary(job), "size": job.array_size}
    return None


def summary_properties(job: Job) -> dict[str, Any] | None:
    """ListJobs' arrayProperties (ArrayPropertiesSummary): a parent's size, a child's index."""
    if job.array_index is not None:
        return {"index": job.array_index}
    if job.array_size is not None:
        return {"size": job.array_size}
    return None
