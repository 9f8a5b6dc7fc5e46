"""File-drop rules: which dropped object becomes which job. Pure."""

from __future__ import annotations

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


def first_rule(policy: PolicyDocument, key: str) -> FileDropRule | None:
    """The first rule, in the policy's order, whose prefix and suffix match the key."""
    return next((rule for rule in policy.file_drop if rule.matches(key)), None)


def request_for(rule: FileDropRule, obj: DroppedObject) -> JobRequest:
    fields = {"uri": obj.uri, "bucket": obj.bucket, "key": obj.key, "name": obj.name, "stem": obj.stem}
    return JobRequest(
        tenant=rule.tenant,
        job_type=rule.job_type,
        parameters={name: template.format_map(fields) for name, template in rule.parameters.items()},
        inputs=[
            Artifact(
                uri=obj.uri, role=ArtifactRole.INPUT, size=obj.size, etag=obj.etag, version_id=obj.version_id
            )
        ],
        idempotency_key=obj.idempotency_key(),
        source="file-drop",
    )
