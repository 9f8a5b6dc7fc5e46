"""File drop: an object created in the ingest bucket becomes a job, exactly once.

Two AWS calls an object: the transactional put of the job (with its idempotency key, its quota
count and the key's newest sequencer) and the dispatch message. An object over its tenant's in-flight
limit becomes a HELD job instead (its key and sequencer kept the same way), released as slots free
(service/held.py): a quota is never a reason to fail the record. So does an object over its tenant's
monthly budget: HELD without a reservation, released when the month has room (a new month, a raised
budget), its reservation made by the release. Admission failures are recorded as
rejected ingests (a log line with the object's URI and the reason, and a metric); they are not
retried. Anything else raises, so the caller retries that record alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from batchplane.errors import ErrorDetail, InvalidRequest, RequestTooLarge, TenantNotAllowed
from batchplane.models.job import Job, JobStatus
from batchplane.models.s3_event import DroppedObject
from batchplane.observability import logger, metric
from batchplane.policy.file_drop import first_match, request_for, skip_reason
from batchplane.service import jobs
from batchplane.service.ports import ObjectVersion, Ports, StaleObject


class Ingested(StrEnum):
    CREATED = "created"
    HELD = "held"
    DUPLICATE = "duplicate"
    STALE = "stale"
    SKIPPED = "skipped"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IngestResult:
    outcome: Ingested
    uri: str
    reason: str = ""
    job: Job | None = None


def ingest_object(ports: Ports, obj: DroppedObject) -> IngestResult:
    skip = skip_reason(obj, ingest_bucket=ports.ingest_bucket, artifact_bucket=ports.artifact_bucket)
    match = first_match(ports.policy, obj.key) if skip is None else None
    if skip is None and match is None:
        skip = "no file_drop rule matches the key"
    if skip is not None or match is None:
        logger.info("object skipped", extra={"uri": obj.uri, "reason": skip})
        return IngestResult(Ingested.SKIPPED, obj.uri, skip or "")
    rule = match.rule
    if obj.size < rule.min_bytes:
        return _rejected(
            obj, f"object is {obj.size} bytes; the rule for {rule.prefix} wants at least {rule.min_bytes}"
        )
    ordering = obj.ordering()
    latest = ObjectVersion(obj.bucket, obj.key, ordering) if ordering else None
    try:
        submitted = jobs.submit(
            ports,
            request_for(match, obj, coalesce=_coalesced(ports, rule.job_type)),
            latest_object=latest,
            hold_over_limit=True,
            hold_over_budget=True,
        )
    except (InvalidRequest, RequestTooLarge, TenantNotAllowed) as refused:
        return _rejected(obj, _reason(refused.message, refused.details))
    except StaleObject:
        logger.info("older event than one already ingested for this key; skipped", extra={"uri": obj.uri})
        return IngestResult(Ingested.STALE, obj.uri, "a newer version of the key was ingested already")
    if submitted.replayed:
        outcome = Ingested.DUPLICATE
    else:
        outcome = Ingested.HELD if submitted.job.status is JobStatus.HELD else Ingested.CREATED
    return IngestResult(outcome, obj.uri, job=submitted.job)


def _coalesced(ports: Ports, job_type: str) -> bool:
    """Drops of a type with an `array` section join array jobs (an unknown type: admission refuses)."""
    kind = ports.policy.job_types.get(job_type)
    return kind is not None and kind.array is not None


def _reason(message: str, details: list[ErrorDetail]) -> str:
    return "; ".join(f"{d.field}: {d.reason}" for d in details) or message


def _rejected(obj: DroppedObject, reason: str) -> IngestResult:
    logger.warning("ingest rejected", extra={"uri": obj.uri, "reason": reason, "size": obj.size})
    metric("IngestRejected")
    return IngestResult(Ingested.REJECTED, obj.uri, reason)
