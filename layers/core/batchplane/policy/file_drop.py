"""File-drop rules: which dropped object becomes which job, and whose. Pure.

A rule's prefix says whose the object is the way the policy's input sources do: `{tenant}` is a
whole key segment (`incoming/{tenant}/sort/`), or the rule names a tenant whose own source the
prefix lies in (checked at load). The job's request then goes through admission like any other, so
its input is checked against that tenant's sources once more.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchplane.models.job import Artifact, ArtifactRole
from batchplane.models.policy import FileDropRule, PolicyDocument
from batchplane.models.request import JobRequest
from batchplane.models.s3_event import DroppedObject

# batchplane writes job outputs under this prefix; an object there never starts a job.
OUTPUT_PREFIX = "outputs/"


def skip_reason(obj: DroppedObject, *, ingest_bucket: str, artifact_bucket: str) -> str | None:
    """Why an object is not a job at all (not an error); None when it may be one."""
    if ingest_bucket and obj.bucket != ingest_bucket:
        return f"bucket {obj.bucket} is not the ingest bucket {ingest_bucket}"
    if obj.bucket == artifact_bucket or obj.key.startswith(OUTPUT_PREFIX):
        return "batchplane's own output never starts a job"
    if obj.key.endswith("/"):
        return "folder marker"
    return None


@dataclass(frozen=True)
class Match:
    rule: FileDropRule
    tenant: str  # read from the key (an unchecked segment: admission refuses a bad name), or the rule's


def first_match(policy: PolicyDocument, key: str) -> Match | None:
    """The first rule, in the policy's order, whose prefix and suffix match the key, and the tenant."""
    for rule in policy.file_drop:
        tenant = rule.tenant_of(key)
        if tenant is not None:
            return Match(rule, tenant)
    return None


def request_for(match: Match, obj: DroppedObject, *, coalesce: bool = False) -> JobRequest:
    """The job request for a dropped object; `coalesce` when its job type has an `array` section."""
    fields = {
        "uri": obj.uri,
        "bucket": obj.bucket,
        "key": obj.key,
        "name": obj.name,
        "stem": obj.stem,
        "tenant": match.tenant,
    }
    rule = match.rule
    return JobRequest(
        tenant=match.tenant,
        job_type=rule.job_type,
        parameters={name: template.format_map(fields) for name, template in rule.parameters.items()},
        inputs=[
            Artifact(
                uri=obj.uri, role=ArtifactRole.INPUT, size=obj.size, etag=obj.etag, version_id=obj.version_id
            )
        ],
        idempotency_key=obj.idempotency_key(),
        priority=rule.priority,
        source="file-drop",
        array=coalesce,
    )
