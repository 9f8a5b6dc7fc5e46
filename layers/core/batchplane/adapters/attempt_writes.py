"""The writes that move an attempt without reading its job first, each one conditional UpdateItem:

- its submission (the dispatcher's record, the coalescer's claim): the attempt into the job item's
  map, the job SUBMITTED, one decision appended, under the condition that the job still waits for
  exactly this attempt;
- its progress on a non-terminal Batch event (RUNNABLE, STARTING, RUNNING, or a new reason for a
  wait), under the condition that the attempt is the job's current one and not yet this far.

Each function returns UpdateItem's arguments without the table; the job store sends them.
"""

from __future__ import annotations

from typing import Any

from batchplane.adapters.job_items import attempt_map, job_key, status_list, to_av
from batchplane.models.job import (
    DISPATCHABLE_STATUSES,
    IN_BATCH_STATUSES,
    Attempt,
    AttemptStatus,
    HistoryEntry,
    JobStatus,
)
from batchplane.models.progress import Progress
from batchplane.models.time import to_iso

SUBMISSION_ATTRIBUTES = (
    "attempts",
    "attempt_count",
    "status",
    "updated_at",
    "capacity",
    "history",
    "history_count",
    "version",
    "outbox",
)


def submission_request(job_id: str, attempt: Attempt, entry: HistoryEntry) -> dict[str, Any]:
    """UpdateItem's arguments (without the table) recording `attempt` if the job waits for it."""
    values = {
        ":attempt": to_av(attempt_map(attempt.model_dump(mode="json", exclude_none=True))),
        ":number": {"N": str(attempt.number)},
        ":previous": {"N": str(attempt.number - 1)},
        ":submitted": {"S": JobStatus.SUBMITTED.value},
        ":now": {"S": to_iso(attempt.submitted_at)},
        ":history": {"L": [to_av(entry.model_dump(mode="json"))]},
        ":one": {"N": "1"},
        ":capacity": {"S": attempt.capacity.value},
    }
    dispatchable = status_list("dispatchable", DISPATCHABLE_STATUSES, values)
    return {
        "Key": job_key(job_id),
        # Every attribute goes by a placeholder: several (status, capacity) are reserved words.
        "UpdateExpression": (
            "SET #attempts.#n = :attempt, #attempt_count = :number, #status = :submitted, "
            "#updated_at = :now, #capacity = :capacity, "
            "#history = list_append(#history, :history) ADD #version :one, #history_count :one "
            # What the last decision owed was delivered from its own write's stream record;
            # clearing it keeps this write's record out of the outbox's filter (no invocation).
            "REMOVE #outbox"
        ),
        "ConditionExpression": f"#status IN ({dispatchable}) AND #attempt_count = :previous",
        "ExpressionAttributeNames": {
            "#n": str(attempt.number),
            **{f"#{name}": name for name in SUBMISSION_ATTRIBUTES},
        },
        "ExpressionAttributeValues": values,
    }


def submission_moving_request(job_id: str, attempt: Attempt, entry: HistoryEntry) -> dict[str, Any]:
    """submission_request for attempt 2 on, when the attempt before is beside the job already (the
    decision that ended it wrote it there): the item lets it go, so this attempt's events rewrite an
    item without it. On a failed condition, the old item comes back to tell why."""
    request = submission_request(job_id, attempt, entry)
    return {
        **request,
        "UpdateExpression": request["UpdateExpression"] + ", #attempts.#prev, #beside_through",
        "ConditionExpression": request["ConditionExpression"] + " AND #beside_through = :previous",
        "ExpressionAttributeNames": {
            **request["ExpressionAttributeNames"],
            "#prev": str(attempt.number - 1),
            "#beside_through": "beside_through",
        },
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def progress_request(job_id: str, progress: Progress) -> dict[str, Any]:
    """UpdateItem's arguments (without the table) moving an attempt forward on a non-terminal event.

    Its condition fails when the event is stale or duplicate (the attempt is already as far, with
    the same reason for its wait), belongs to an attempt that is not the job's current one, to a twin
    Batch job, or the job has finished.
    """
    sets, names, values = _progress_sets(progress)
    active = status_list("active", IN_BATCH_STATUSES, values)
    further = "#attempts.#n.#rank < :rank"
    if progress.status_reason:
        # Batch's reason for the wait changed (or came) without a new status: the same one write.
        further = (
            f"({further} OR (#attempts.#n.#rank = :rank AND "
            "(attribute_not_exists(#attempts.#n.#reason) OR #attempts.#n.#reason <> :reason)))"
        )
    # The dispatcher records the Batch job id with the attempt; a twin's events do not match.
    same_job = "#attempts.#n.#bid = :bid"
    if progress.array_name is not None and progress.array_index is not None:
        # An array child's attempt is claimed before its array is submitted: the first event
        # that names the child records its id, in this same write.
        names.update({"#array": "array_name", "#index": "array_index"})
        values.update({":array": {"S": progress.array_name}, ":index": {"N": str(progress.array_index)}})
        same_job = (
            f"({same_job} OR (attribute_not_exists(#attempts.#n.#bid) "
            "AND #attempts.#n.#array = :array AND #attempts.#n.#index = :index))"
        )
    return {
        "Key": job_key(job_id),
        # REMOVE #outbox: see submission_request.
        "UpdateExpression": f"SET {', '.join(sets)} ADD #version :one REMOVE #outbox",
        "ConditionExpression": (
            # Attempt n is current, in Batch's hands, and not yet this far. (A cancelled job that
            # was retried by hand is QUEUED with attempt n still unfinished: IN, not <> CANCELLED.)
            f"#attempt_count = :n AND #status IN ({active}) AND {further} AND {same_job}"
        ),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _progress_sets(progress: Progress) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The SET clauses of a progress event, with their attribute names and values."""
    at = to_iso(progress.at)
    names = {
        "#attempts": "attempts",
        "#n": str(progress.number),
        "#a_status": "status",
        "#rank": "status_rank",
        "#bid": "batch_job_id",
        "#status": "status",
        "#updated_at": "updated_at",
        "#attempt_count": "attempt_count",
        "#version": "version",
        "#outbox": "outbox",
    }
    values: dict[str, Any] = {
        ":a_status": {"S": progress.status.value},
        ":rank": {"N": str(progress.status.rank)},
        ":bid": {"S": progress.batch_job_id},
        ":status": {"S": progress.job_status.value},
        ":now": {"S": at},
        ":n": {"N": str(progress.number)},
        ":one": {"N": "1"},
    }
    sets = [
        "#attempts.#n.#a_status = :a_status",
        "#attempts.#n.#rank = :rank",
        # the same id (a single job's, recorded at submission), or an array child's first naming
        "#attempts.#n.#bid = :bid",
        "#status = :status",
        "#updated_at = :now",
    ]
    if progress.started_at is not None:
        names["#started"] = "started_at"
        values[":started"] = {"S": to_iso(progress.started_at)}
        sets.append("#attempts.#n.#started = :started")
    if progress.log_stream:
        names["#log"] = "log_stream"
        values[":log"] = {"S": progress.log_stream}
        sets.append("#attempts.#n.#log = :log")
    if progress.status is AttemptStatus.RUNNABLE:
        names["#runnable"] = "runnable_at"
        sets.append("#attempts.#n.#runnable = if_not_exists(#attempts.#n.#runnable, :now)")
    if progress.status is AttemptStatus.STARTING:
        names["#starting"] = "starting_at"
        sets.append("#attempts.#n.#starting = if_not_exists(#attempts.#n.#starting, :now)")
    if progress.status_reason:
        names["#reason"] = "status_reason"
        values[":reason"] = {"S": progress.status_reason}
        sets.append("#attempts.#n.#reason = :reason")
    return sets, names, values
