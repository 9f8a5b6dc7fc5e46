"""Batch's events about batchplane's array jobs (service/coalesce.py submits them): which attempt a
child runs, the parent's id recorded when the coalescer could not, and children nobody wants stopped.

A child's event goes on in service/state_change.py exactly as a single job's event of that attempt.
"""

from __future__ import annotations

from batchplane.lifecycle.array_children import Standing, standing
from batchplane.models.batch_event import BatchJobDetail
from batchplane.observability import logger
from batchplane.service.ports import Ports


def is_child(detail: BatchJobDetail) -> bool:
    """A child's event: arrayProperties.index, and Batch's id "<parent>:<index>"."""
    index = detail.array_index
    return index is not None and detail.job_id.endswith(f":{index}")


def parent_event(ports: Ports, array_name: str, detail: BatchJobDetail) -> None:
    """A parent's event changes no job. It records the parent's id if the coalescer did not (it died
    between SubmitJob and its record: adoption), once; any other is ignored."""
    recorded = _recorded_parent(ports, array_name, detail.job_id)
    if recorded is not None and recorded != detail.job_id:
        # Its children find their attempts taken by the recorded parent's and are terminated.
        logger.warning(
            "a second parent for one array",
            extra={"array": array_name, "parent": recorded, "other": detail.job_id},
        )
    else:
        logger.debug(
            "array parent event; nothing to do", extra={"array": array_name, "status": detail.status}
        )


def from_twin(ports: Ports, array_name: str, detail: BatchJobDetail) -> bool:
    """A child of a second parent of one array (a twin submission): not the recorded parent's.

    A claimed attempt names its array and index, not yet a Batch id, so a twin's child would match it
    as well; the parent decides. With none recorded yet, this child's parent is recorded, as its
    parent's event would record it: the coalescer's own record and every later child then agree."""
    parent = detail.job_id.rpartition(":")[0]
    recorded = _recorded_parent(ports, array_name, parent)
    return recorded is not None and recorded != parent


def _recorded_parent(ports: Ports, array_name: str, parent: str) -> str | None:
    """The array's recorded parent, `parent` recorded first when none is; None when the array is not
    one batchplane made (or Batch refused it)."""
    known = ports.arrays.parent_of(array_name)
    if known is not None:
        return known
    if ports.arrays.record_parent(array_name, parent):
        logger.info("array parent recorded from an event", extra={"array": array_name, "parent": parent})
        return parent
    return ports.arrays.parent_of(array_name)  # recorded meanwhile, or None


def stop_unwanted(ports: Ports, job_id: str, number: int, detail: BatchJobDetail) -> bool:
    """After a child's non-terminal event changed nothing: stale, or a child the job no longer wants
    (cancelled before its array was submitted, another attempt current, a twin's place), which is
    terminated as the dispatcher terminates an unwanted submission. True when it was."""
    job = ports.store.get(job_id)
    if standing(job, number, detail) is not Standing.UNWANTED:
        return False
    terminate(ports, detail, f"attempt {number} of {job_id} is not wanted")
    return True


def terminate(ports: Ports, detail: BatchJobDetail, why: str) -> None:
    """TerminateJob of one child only (its parent's other children go on); of a child already
    ending it changes nothing."""
    logger.warning(
        "array child not wanted; terminating it",
        extra={
            "batch_job_id": detail.job_id,
            "array": detail.job_name,
            "index": detail.array_index,
            "why": why,
        },
    )
    ports.batch.terminate(detail.job_id, f"batchplane: {why}")
