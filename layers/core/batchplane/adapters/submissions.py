"""The one write that records an attempt as submitted (the dispatcher's record, the coalescer's claim):
the attempt into the job item's map, the job SUBMITTED, one decision appended, under the condition
that the job still waits for exactly this attempt."""

from __future__ import annotations

from typing import Any

from batchplane.adapters.job_items import SUBMISSION_ATTRIBUTES, attempt_map, job_key, status_list, to_av
from batchplane.models.job import DISPATCHABLE_STATUSES, Attempt, HistoryEntry, JobStatus
from batchplane.models.time import to_iso


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
