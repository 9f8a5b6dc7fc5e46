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
    summary = dict.fromkeys(STATUSES, 0)
    for child in parent.children:
        summary[child.status] += 1
    return summary


def followed_status(parent: Job) -> str:
    """The status the parent has, given its children's."""
    statuses = [child.status for child in parent.children]
    if all(status in ENDED for status in statuses):
        return "SUCCEEDED" if all(status == "SUCCEEDED" for status in statuses) else "FAILED"
    if parent.status == "SUBMITTED" and all(status in ("SUBMITTED", "PENDING") for status in statuses):
        return "SUBMITTED"
    return "PENDING"


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
