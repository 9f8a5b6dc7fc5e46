"""Outputs: each object a job's attempt writes under its output prefix is recorded as it is written.

The artifact bucket notifies every object created under `outputs/`; the key says whose it is
(policy/outputs.py). Recording from notifications, rather than listing the prefix when the attempt
ends, costs no ListObjectsV2 per job, has no cap, carries each object's version id, and records the
objects of a failed attempt too. An object under no known job of the tenant its key names is
skipped and logged: a key is not proof of ownership.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from batchplane.models.job import Artifact, ArtifactRole, Job
from batchplane.models.s3_event import DroppedObject
from batchplane.observability import logger, metric
from batchplane.policy.outputs import output_owner
from batchplane.service.ports import Ports


@dataclass
class Recorded:
    recorded: int = 0
    skipped: list[str] = field(default_factory=list)


def record_outputs(ports: Ports, objects: list[DroppedObject]) -> Recorded:
    """Record each object as an output artifact of the attempt that wrote it."""
    report = Recorded()
    by_job: dict[str, list[Artifact]] = {}
    owners: dict[str, str] = {}
    for obj in objects:
        owner = output_owner(obj.key) if obj.bucket == ports.artifact_bucket else None
        if owner is None:
            report.skipped.append(obj.uri)
            logger.warning("not an output of any job; skipped", extra={"uri": obj.uri})
            continue
        owners[owner.job_id] = owner.tenant
        by_job.setdefault(owner.job_id, []).append(
            Artifact(
                uri=obj.uri,
                role=ArtifactRole.OUTPUT,
                size=obj.size,
                etag=obj.etag.strip('"') if obj.etag else None,
                version_id=obj.version_id,
                attempt=owner.attempt,
            )
        )
    now = ports.clock()
    for job_id, artifacts in by_job.items():
        job = ports.store.get(job_id, consistent=False)
        if not _owned_by(job, owners[job_id]):
            report.skipped.extend(a.uri for a in artifacts)
            logger.warning(
                "outputs under an unknown job; skipped", extra={"job_id": job_id, "count": len(artifacts)}
            )
            continue
        ports.store.record_artifacts(job_id, owners[job_id], artifacts, now)
        report.recorded += len(artifacts)
    if report.recorded:
        metric("OutputsRecorded", report.recorded)
    return report


def _owned_by(job: Job | None, tenant: str) -> bool:
    return job is not None and job.tenant == tenant
