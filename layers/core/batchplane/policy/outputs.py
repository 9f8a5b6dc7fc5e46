"""Where a job's outputs go, and whose an object under `outputs/` is. Pure.

Each attempt writes under a prefix of its own, so the objects of a retried attempt are never taken
for the successful one's, and an object's key says which job and attempt wrote it:

    s3://<artifact bucket>/outputs/<tenant>/<job_id>/               the job's output prefix
    s3://<artifact bucket>/outputs/<tenant>/<job_id>/attempt-<n>/   attempt n's (BATCHPLANE_OUTPUT_PREFIX)
"""

import re
from dataclasses import dataclass

OUTPUTS = "outputs/"
_OUTPUT_KEY = re.compile(
    r"^outputs/(?P<tenant>[^/]+)/(?P<job_id>[^/]+)/(?:attempt-(?P<attempt>[1-9][0-9]*)/)?."
)


def output_prefix_for(bucket: str, tenant: str, job_id: str) -> str:
    return f"s3://{bucket}/{OUTPUTS}{tenant}/{job_id}/"


def attempt_output_prefix(job_output_prefix: str, attempt: int) -> str:
    return f"{job_output_prefix}attempt-{attempt}/"


@dataclass(frozen=True)
class OutputOwner:
    tenant: str
    job_id: str
    attempt: int  # 0: written under the job's prefix, outside any attempt's


def output_owner(key: str) -> OutputOwner | None:
    """Whose output the object at `key` (in the artifact bucket) is; None for any other key."""
    match = _OUTPUT_KEY.match(key)
    if match is None:
        return None
    return OutputOwner(match["tenant"], match["job_id"], int(match["attempt"] or 0))
