"""Pinned inputs: the object version (or, unversioned, the content) each input of a job was made for.

The dispatcher hands them to the worker (BATCHPLANE_INPUTS, service/dispatch.py); a worker reads a
pinned input with GetObject VersionId, else IfMatch on the ETag, so it never processes other content
than its job was made for. S3 answers 412 PreconditionFailed (ETag) or NoSuchVersion when that
content is gone, and the worker ends the attempt with lifecycle/classify.py's INPUT_CHANGED exit code.
"""

import json

from pydantic import ConfigDict

from batchplane.models.base import Model
from batchplane.models.job import Artifact, ArtifactRole

# S3 names the one version of a key written while versioning is off or suspended "null", and the next
# such write replaces it: that id does not name content for good, so such an input is pinned by ETag.
UNVERSIONED_ID = "null"


class InputPin(Model):
    """One input and what must be read of it: `version_id`, or else the content whose ETag is `etag`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str
    version_id: str | None = None
    etag: str | None = None

    @property
    def expected(self) -> str:
        """What the job was made for, as its history says it: `version <id>` or `ETag "<etag>"`."""
        if self.version_id:
            return f"version {self.version_id}"
        etag = (self.etag or "").strip('"')
        return f'ETag "{etag}"'

    def __str__(self) -> str:
        return f"{self.uri} ({self.expected})"


def pin_of(artifact: Artifact) -> InputPin | None:
    """The artifact's pin: its version id where that names a version for good, else its ETag; None
    for an input recorded with neither (read as it is when the attempt runs)."""
    version = artifact.version_id if artifact.version_id != UNVERSIONED_ID else None
    if version:
        return InputPin(uri=artifact.uri, version_id=version)
    if artifact.etag:
        return InputPin(uri=artifact.uri, etag=artifact.etag)
    return None


def pins_of(artifacts: list[Artifact]) -> list[InputPin]:
    """The pins of the inputs among `artifacts`, in order, one per URI (the first)."""
    pins: dict[str, InputPin] = {}
    for artifact in artifacts:
        if artifact.role is ArtifactRole.INPUT and artifact.uri not in pins:
            pin = pin_of(artifact)
            if pin is not None:
                pins[artifact.uri] = pin
    return list(pins.values())


def pins_json(pins: list[InputPin]) -> str:
    """The pins as the worker reads them: a compact JSON list of {"uri", "version_id" or "etag"}."""
    return json.dumps([pin.model_dump(exclude_none=True) for pin in pins], separators=(",", ":"))
