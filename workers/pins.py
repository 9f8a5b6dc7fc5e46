"""The job's pinned inputs: which version (or, unversioned, which content) of each input to read.

The dispatcher sets BATCHPLANE_INPUTS to a JSON list, one entry per input the job was made for:
`{"uri": "s3://bucket/key", "version_id": "..."}` where the bucket is versioned, else
`{"uri": ..., "etag": "..."}`. A worker reads a pinned input with GetObject VersionId, or IfMatch on
the ETag; an input that is not listed is read as it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

INPUTS_VARIABLE = "BATCHPLANE_INPUTS"


@dataclass(frozen=True)
class Pin:
    """What must be read of one input: `version_id`, or else the content whose ETag is `etag`."""

    version_id: str | None = None
    etag: str | None = None

    @property
    def if_match(self) -> str:
        """The ETag as an HTTP entity tag (quoted), as If-Match wants it; S3's events leave it bare."""
        etag = (self.etag or "").strip('"')
        return f'"{etag}"'

    def __str__(self) -> str:
        return f"version {self.version_id}" if self.version_id else f"ETag {self.if_match}"


def pins_from(environ: Mapping[str, str]) -> dict[str, Pin]:
    """The pins by URI; none when the variable is unset. ValueError when it is not what the dispatcher
    writes (a worker must not guess which content it was meant to read)."""
    text = environ.get(INPUTS_VARIABLE, "")
    if not text:
        return {}
    try:
        entries = json.loads(text)
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        raise ValueError(f"{INPUTS_VARIABLE} is not a JSON list: {text[:200]!r}")
    pins: dict[str, Pin] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("uri"), str):
            raise ValueError(f"{INPUTS_VARIABLE} has an entry without a uri: {entry!r}")
        version, etag = _text(entry.get("version_id")), _text(entry.get("etag"))
        if version is None and etag is None:
            raise ValueError(f"{INPUTS_VARIABLE} pins {entry['uri']} to neither a version_id nor an etag")
        pins.setdefault(entry["uri"], Pin(version_id=version, etag=None if version else etag))
    return pins


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
