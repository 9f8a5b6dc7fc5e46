"""What a caller asks for, after the trigger's shape (HTTP body, S3 record) has been taken off."""

import hashlib
import json

from pydantic import ConfigDict, Field

from batchplane.models.base import Model
from batchplane.models.job import Artifact


class JobRequest(Model):
    """A request to run a job, from any entry point; admission turns it into a Job or refuses it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=1)
    job_type: str
    parameters: dict[str, str] = Field(default_factory=dict)
    vcpus: int | None = None
    memory_mib: int | None = None
    inputs: list[Artifact] = Field(default_factory=list)
    idempotency_key: str | None = None
    source: str = "api"
    size_bytes: int = Field(default=0, ge=0, description="size of the request as received")
    priority: int | None = Field(default=None, description="scheduling priority within the tenant's share")
    array: bool = Field(default=False, description="its first attempt may join an array job")

    def fingerprint(self) -> str:
        """Hash of what the caller asked for, so a reused idempotency key can be told apart."""
        body = {
            "job_type": self.job_type,
            "parameters": self.parameters,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "inputs": sorted(a.uri for a in self.inputs),
        }
        # The versions or ETags a caller pinned are part of what it asked for. Left out when there
        # are none, so an Idempotency-Key's fingerprint is what it was before pins; and for file drop,
        # whose key is made of the object's version already (its inputs always carry one).
        pinned = sorted(
            f"{a.uri}\n{a.version_id or ''}\n{a.etag or ''}" for a in self.inputs if a.version_id or a.etag
        )
        if pinned and self.source == "api":
            body["pinned"] = pinned
        if self.priority is not None:  # left out when not asked for: fingerprints from before stay
            body["priority"] = self.priority
        if self.array:  # likewise
            body["array"] = True
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
