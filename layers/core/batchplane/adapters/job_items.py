"""The job table's item layout: keys, index attributes, and conversions between Job and items.

A job is one bounded item plus immutable items beside it, so the item that every event rewrites
stays a few KB however many attempts, decisions or outputs the job has:

    pk                     sk                        what
    JOB#<job_id>           JOB                       the job: its current attempt (the map may briefly
                                                     hold the one before), its last HISTORY_INLINE
                                                     decisions, its inputs; in no index
    JOB#<job_id>           INDEX                     the job's index entry (job_index.py)
    JOB#<job_id>           ATTEMPT#<n:04>            an attempt that is no longer current (immutable)
    JOB#<job_id>           HIST#<seq:06>             a decision older than the inline ones (immutable)
    JOB#<job_id>           ART#<n:04>#<role>#<uri>   an artifact of attempt n (inputs: attempt 0)
    ART#<uri>              <tenant>#<job_id>#<n:04>#<role>   the same artifact, found by its object
    IDEM#<tenant>#<key>    IDEM                      an Idempotency-Key and the job it made (TTL)
    TENANT#<tenant>        INFLIGHT#<job_type>       the tenant's in-flight counter for a job type, and
                                                     how many of its jobs of that type are HELD (`held`):
                                                     quota_items.py
    HELD#<tenant>#<type>   <created_at>#<job_id>     a HELD job's place in its queue, oldest first
                                                     (quota_items.py)
    OBJ#<bucket>#<key>     LATEST                    the newest S3 sequencer ingested for an object key,
                                                     right-padded (`right_padded_sequencer`)

The indexes (by_tenant_status, by_activity) hold INDEX items only: see job_index.py.
Finished jobs and everything beside them carry `expires_at` (TTL).

Items of the earlier layouts (every attempt, all history and every artifact in the JOB item; or the
index keys on the JOB item) read the same; `batchplane migrate` rewrites them into this layout.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, cast

from batchplane.models.job import Artifact, Attempt, AttemptStatus, CostBook, HistoryEntry, Job, JobStatus
from batchplane.models.time import to_iso
from batchplane.service.ports import ArtifactUse

if TYPE_CHECKING:  # types only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

    from batchplane.service.ports import ObjectVersion

IDEMPOTENCY_TTL = timedelta(days=7)
# Decisions kept in the job item; older ones move beside it. Eight cover a job retried three times
# (submitted, retried and fell back per attempt) at about 1.2 KB.
HISTORY_INLINE = 8
# A sort key holds at most 1,024 bytes: a longer URI is named by its digest there.
_URI_IN_KEY_MAX = 900


@cache
def _codec() -> tuple[Any, Any]:
    # boto3 (and s3transfer behind it) loads here, at first use, not at import: ~50 ms of cold start.
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the domain has only ints."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_av(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], _codec()[0].serialize(value))


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    deserializer = _codec()[1]
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def idempotency_key(tenant: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEM#{tenant}#{key}"}, "sk": {"S": "IDEM"}}


def expiry(at: datetime, retention: timedelta) -> int:
    return int((at + retention).timestamp())


# Never SET in place or appended to by an update expression (history is: list_append needs the list
# there); REMOVE of an absent outbox does nothing.
_OMITTED_WHEN_EMPTY = ("inputs", "artifacts", "outbox")
_EMPTY_COST_BOOK = CostBook().model_dump(mode="json", exclude_none=True)


def job_to_item(job: Job, retention: timedelta | None = None) -> dict[str, Any]:
    """The job item: the current attempt, the last decisions and the inputs; a finished job expires
    `retention` after it finished."""
    data = job.model_dump(mode="json", exclude_none=True)
    # Every write of the item pays for its bytes: its key says its id, and what is empty or at its
    # default reads back the same when absent (this release's reader and the one before both do).
    del data["job_id"]
    for name in _OMITTED_WHEN_EMPTY:
        if not data[name]:
            del data[name]
    if data["cost_book"] == _EMPTY_COST_BOOK:
        del data["cost_book"]
    data["attempts"] = {str(a["number"]): attempt_map(a) for a in data["attempts"][-1:]}
    if _last_attempt_beside(job):
        # Written beside by this save too: the next attempt's submission drops it from the map.
        data["beside_through"] = job.attempts[-1].number
    data["history"] = data["history"][-HISTORY_INLINE:]
    data.update(
        pk=f"JOB#{job.job_id}",
        sk="JOB",
        attempt_count=len(job.attempts),
        history_count=len(job.history),
    )
    if job.status.is_terminal and retention is not None:
        data["expires_at"] = expiry(job.updated_at, retention)
    return {k: to_av(v) for k, v in data.items()}


def attempt_item(job_id: str, attempt: Attempt, expires_at: int) -> dict[str, Any]:
    data = attempt.model_dump(mode="json", exclude_none=True)
    data.update(pk=f"JOB#{job_id}", sk=f"ATTEMPT#{attempt.number:04d}", expires_at=expires_at)
    return {k: to_av(v) for k, v in data.items()}


def history_item(job_id: str, seq: int, entry: HistoryEntry, expires_at: int) -> dict[str, Any]:
    data = entry.model_dump(mode="json")
    data.update(pk=f"JOB#{job_id}", sk=f"HIST#{seq:06d}", seq=seq, expires_at=expires_at)
    return {k: to_av(v) for k, v in data.items()}


def _uri_in_key(uri: str) -> str:
    if len(uri.encode()) <= _URI_IN_KEY_MAX:
        return uri
    return "~" + hashlib.sha256(uri.encode()).hexdigest()


def artifact_items(
    job_id: str, tenant: str, artifact: Artifact, recorded_at: datetime, expires_at: int
) -> list[dict[str, Any]]:
    """The artifact twice: under its job (the job's artifacts, in order) and under its object (lineage:
    which of a tenant's jobs read or wrote it)."""
    attempt = artifact.attempt or 0
    data = artifact.model_dump(mode="json", exclude_none=True)
    data.update(
        attempt=attempt, job_id=job_id, tenant=tenant, recorded_at=to_iso(recorded_at), expires_at=expires_at
    )
    role = artifact.role.value
    under_job = {**data, "pk": f"JOB#{job_id}", "sk": f"ART#{attempt:04d}#{role}#{_uri_in_key(artifact.uri)}"}
    under_object = {**data, "pk": f"ART#{artifact.uri}", "sk": f"{tenant}#{job_id}#{attempt:04d}#{role}"}
    return [{k: to_av(v) for k, v in item.items()} for item in (under_job, under_object)]


def attempt_map(attempt: dict[str, Any]) -> dict[str, Any]:
    # The rank lets a conditional update compare progress without reading the item first.
    return {**attempt, "status_rank": AttemptStatus(attempt["status"]).rank}


_ITEM_ONLY = {
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "gsi3pk",
    "gsi3sk",
    "attempt_count",
    "beside_through",
    "expires_at",
}


def item_to_artifact(item: dict[str, Any]) -> Artifact:
    plain = _from_item(item)
    return Artifact.model_validate({k: v for k, v in plain.items() if k in Artifact.model_fields})


def item_to_use(item: dict[str, Any]) -> ArtifactUse:
    """An artifact's item under its object: which job and attempt read or wrote it."""
    return ArtifactUse(
        job_id=item["job_id"]["S"], attempt=int(item["attempt"]["N"]), artifact=item_to_artifact(item)
    )


_SIDE_ONLY = {"pk", "sk", "expires_at", "seq", "job_id", "tenant", "recorded_at"}


def item_to_job(item: dict[str, Any], beside: list[dict[str, Any]] | None = None) -> Job:
    """The job from its item and the items beside it (attempts and decisions no longer inline).

    Reads the earlier layout too: there the item holds every attempt and all history.
    """
    data = {k: v for k, v in _from_item(item).items() if k not in _ITEM_ONLY}
    # Its key says its id: the item repeats it no more (job_to_item); earlier releases' items do.
    data.setdefault("job_id", item["pk"]["S"].removeprefix("JOB#"))
    attempts: dict[int, dict[str, Any]] = {}
    older_history: list[tuple[int, dict[str, Any]]] = []
    for side in beside or []:
        plain = {k: v for k, v in _from_item(side).items() if k not in _SIDE_ONLY}
        sort_key = side["sk"]["S"]
        if sort_key.startswith("ATTEMPT#"):
            attempts[int(plain["number"])] = plain
        elif sort_key.startswith("HIST#"):
            older_history.append((int(side["seq"]["N"]), plain))
    for number, attempt in (data.get("attempts") or {}).items():
        attempts[int(number)] = {k: v for k, v in attempt.items() if k != "status_rank"}
    data["attempts"] = [attempts[n] for n in sorted(attempts)]
    inline = data.get("history") or []
    total = data.pop("history_count", len(inline))
    first_inline = total - len(inline)
    earlier = [entry for seq, entry in sorted(older_history, key=lambda pair: pair[0]) if seq < first_inline]
    data["history"] = [*earlier, *inline]
    return Job.model_validate(data)


def attempts_only_beside(item: dict[str, Any], beside: list[dict[str, Any]]) -> frozenset[int]:
    """The attempts a read found beside the job item and not in it: written there already."""
    inline = set((item.get("attempts") or {}).get("M", {}))
    return frozenset(
        number
        for side in beside
        if side["sk"]["S"].startswith("ATTEMPT#")
        and str(number := int(side["sk"]["S"].removeprefix("ATTEMPT#"))) not in inline
    )


def _last_attempt_beside(job: Job) -> bool:
    """A finished attempt of an unfinished job (a retry or a fallback is coming) is written beside the
    job at once; the item keeps it until the next attempt is submitted, which removes it, so that
    attempt's events rewrite an item without it."""
    return bool(job.attempts) and job.attempts[-1].status.is_terminal and not job.status.is_terminal


def side_items(
    job: Job,
    previous: Job | None,
    now: datetime,
    retention: timedelta,
    *,
    beside_already: frozenset[int] = frozenset(),
) -> list[dict[str, Any]]:
    """What a save must put beside the job item first: the attempts that stop being current, and the
    decisions that leave the inline history. Immutable facts, so writing one twice is harmless, but
    not free: `beside_already` are the attempts the read found beside and not in the item (1 WRU each
    spared)."""
    expires = expiry(now, retention)
    items: list[dict[str, Any]] = []
    # The item's map holds the current attempt and at most the one before (recorded by dispatch).
    since = (previous.attempts[-1].number - 1) if previous and previous.attempts else 1
    moving = job.attempts if _last_attempt_beside(job) else job.attempts[:-1]
    items.extend(
        attempt_item(job.job_id, a, expires)
        for a in moving
        if a.number >= since and a.number not in beside_already
    )
    # Inline history: the last HISTORY_INLINE entries, plus what dispatch appended since the read.
    spill_end = len(job.history) - HISTORY_INLINE
    spill_start = max(0, (len(previous.history) if previous else 0) - HISTORY_INLINE - 2)
    items.extend(
        history_item(job.job_id, seq, job.history[seq], expires)
        for seq in range(spill_start, max(0, spill_end))
    )
    return items


def status_list(name: str, statuses: frozenset[JobStatus], values: dict[str, Any]) -> str:
    """Placeholders for `#status IN (...)`, adding their values to `values`."""
    placeholders = []
    for index, status in enumerate(sorted(statuses)):
        values[f":{name}{index}"] = {"S": status.value}
        placeholders.append(f":{name}{index}")
    return ", ".join(placeholders)


# -- the items of a job's creating transaction (its quota count: quota_items.py) ----------------------


def put_new(table: str, job: Job) -> TransactWriteItemTypeDef:
    return {
        "Put": {
            "TableName": table,
            "Item": job_to_item(job),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def put_key(table: str, job: Job, key: str, fingerprint: str) -> TransactWriteItemTypeDef:
    """The Idempotency-Key's item; the old one comes back when the key was used before."""
    expires = int((job.created_at + IDEMPOTENCY_TTL).timestamp())
    return {
        "Put": {
            "TableName": table,
            "Item": {
                **idempotency_key(job.tenant, key),
                "job_id": {"S": job.job_id},
                "fingerprint": {"S": fingerprint},
                "expires_at": {"N": str(expires)},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


# The key's newest sequencer, right-padded (models/s3_event.py::DroppedObject.ordering). Stacks before
# the right-pad rule wrote the left-padded value as `sequencer`: it cannot be turned into the other
# (the unpadded length is lost) and comparing the two would be wrong, so it is never compared. An item
# without this attribute is of unknown order: the event is taken as the newer one (it makes its job),
# and the write replaces the old attribute with this one.
LATEST_ORDER = "right_padded_sequencer"


def move_latest(table: str, obj: ObjectVersion, job_id: str) -> TransactWriteItemTypeDef:
    """The object key's newest-seen sequencer, moved only forward."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": f"OBJ#{obj.bucket}#{obj.key}"}, "sk": {"S": "LATEST"}},
            "UpdateExpression": f"SET {LATEST_ORDER} = :ordering, job_id = :job_id REMOVE sequencer",
            "ConditionExpression": f"attribute_not_exists({LATEST_ORDER}) OR {LATEST_ORDER} < :ordering",
            "ExpressionAttributeValues": {":ordering": {"S": obj.ordering}, ":job_id": {"S": job_id}},
        }
    }
