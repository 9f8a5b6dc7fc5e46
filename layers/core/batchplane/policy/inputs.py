"""A tenant's data boundary, applied to what a job would read. Pure.

Every S3 location a request names must be in one of the tenant's areas (the policy's `inputs`,
models/inputs.py): each parameter whose value is an `s3://` URI and each entry of `inputs`. A value
that mentions an S3 location any other way (`S3://`, `s3a://`, an S3 ARN, a URI inside a longer
value) is refused, so a worker can never be handed an object admission did not look at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchplane.errors import ErrorDetail
from batchplane.models.inputs import ARTIFACTS, INGEST, Area, InputSources
from batchplane.models.s3_uri import SCHEME, S3Uri

# Any spelling of an S3 location other than a whole `s3://bucket/key` value.
_S3_MENTION = re.compile(r"s3[an]?://|arn:[a-z-]+:s3(?:-object-lambda|-outposts)?:", re.IGNORECASE)


@dataclass(frozen=True)
class StackBuckets:
    """The buckets `@ingest` and `@artifacts` stand for in this deployment ('' when it has none)."""

    ingest: str
    artifacts: str

    def resolve(self, bucket: str) -> str:
        return {INGEST: self.ingest, ARTIFACTS: self.artifacts}.get(bucket, bucket)


def areas_for(inputs: InputSources, tenant: str, buckets: StackBuckets) -> list[Area]:
    """Where the tenant's inputs may be, with this stack's bucket names."""
    resolved = (Area(buckets.resolve(a.bucket), a.prefix) for a in inputs.areas_of(tenant))
    return [area for area in resolved if area.bucket]


def _owner(inputs: InputSources, uri: S3Uri, buckets: StackBuckets) -> str | None:
    """The tenant whose area of a shared source holds the object, if any."""
    for source in inputs.sources:
        if buckets.resolve(source.bucket) == uri.bucket and (owner := source.owner(uri.key)):
            return owner
    return None


def location_problem(value: str, tenant: str, inputs: InputSources, buckets: StackBuckets) -> str | None:
    """Why the tenant may not have the object at `value` read for it; None when it may."""
    try:
        uri = S3Uri.parse(value)
    except ValueError as bad:
        return str(bad)
    areas = areas_for(inputs, tenant, buckets)
    allowed = ", ".join(str(a) for a in areas) or "none"
    # Whatever the sources say, another tenant's prefix and outputs are never an input: this also
    # holds where a tenant's own source names the stack's buckets by name instead of @ingest/@artifacts.
    owner = _owner(inputs, uri, buckets)
    if owner is not None and owner != tenant:
        return f"{uri} is another tenant's data; the inputs of tenant {tenant} may come from {allowed}"
    if uri.bucket == buckets.artifacts and not uri.key.startswith(f"outputs/{tenant}/"):
        return f"{uri} is not among the outputs of tenant {tenant}; its inputs may come from {allowed}"
    if any(uri.is_under(area.bucket, area.prefix) for area in areas):
        return None
    return f"{uri} is outside the input sources of tenant {tenant}: {allowed}"


def value_problem(value: str, tenant: str, inputs: InputSources, buckets: StackBuckets) -> str | None:
    """A parameter's value: an s3:// URI is an input, checked; any other value may not name S3 at all."""
    if value.lstrip().lower().startswith(SCHEME):  # S3Uri says what is wrong with " S3://..."
        return location_problem(value, tenant, inputs, buckets)
    if _S3_MENTION.search(value):
        return "names an S3 location other than as a whole s3://bucket/key value"
    return None


def input_problems(
    inputs: InputSources,
    tenant: str,
    buckets: StackBuckets,
    *,
    parameters: Mapping[str, str],
    uris: Sequence[str] = (),
) -> list[ErrorDetail]:
    """Each parameter and input URI the tenant may not have read for it, with the reason."""
    problems = [
        ErrorDetail(f"parameters.{name}", reason)
        for name, value in parameters.items()
        if (reason := value_problem(value, tenant, inputs, buckets))
    ]
    problems.extend(
        ErrorDetail(f"inputs[{index}].uri", reason)
        for index, uri in enumerate(uris)
        if (reason := location_problem(uri, tenant, inputs, buckets))
    )
    return problems
