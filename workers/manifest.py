"""An array job's child finds which batchplane job it is in the array's manifest.

batchplane submits a burst of jobs as one Batch array job: the children share one command and one
environment, with BATCHPLANE_MANIFEST (s3://bucket/_arrays/<array>.jsonl, written before SubmitJob)
naming the manifest, and Batch gives each child AWS_BATCH_JOB_ARRAY_INDEX. Line k of the manifest is
child k's job: `{"index": k, "job_id", "attempt", "tenant", "output_prefix", "inputs": [pins],
"parameters": {name: value}}`. The child then runs exactly as a single job with BATCHPLANE_JOB_ID,
BATCHPLANE_ATTEMPT, BATCHPLANE_OUTPUT_PREFIX and BATCHPLANE_INPUTS set from that line, and with its own
parameters in the command: the job definitions pass parameter `name` as `--name-with-hyphens
Ref::name`, and the shared command holds the first child's values, no other child's own. A line
without parameters sets its one input as `--input`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from workers.pins import INPUTS_VARIABLE

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MANIFEST_VARIABLE = "BATCHPLANE_MANIFEST"
INDEX_VARIABLE = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by Batch in an array job's child


class ManifestError(Exception):
    """The manifest has no usable line for this child: nothing to run, and a retry would read the same
    immutable manifest (workers/README.md: exit code 65)."""


def for_array_child(
    environ: Mapping[str, str], argv: Sequence[str], s3: Callable[[], S3Client]
) -> tuple[Mapping[str, str], list[str]]:
    """The environment and arguments the worker runs with: as given for a single job; for an array
    child, its manifest line's job, attempt, output prefix and inputs, and its input as `--input`."""
    uri, index_text = environ.get(MANIFEST_VARIABLE), environ.get(INDEX_VARIABLE)
    if not uri or index_text is None:
        return environ, list(argv)
    if not index_text.isdigit():
        raise ManifestError(f"{INDEX_VARIABLE} is not an array index: {index_text!r}")
    line = read_line(s3(), uri, int(index_text))
    child = {
        **environ,
        "BATCHPLANE_JOB_ID": str(line["job_id"]),
        "BATCHPLANE_ATTEMPT": str(line["attempt"]),
        "BATCHPLANE_OUTPUT_PREFIX": str(line["output_prefix"]),
        INPUTS_VARIABLE: json.dumps(line["inputs"]),
    }
    parameters = line.get("parameters")
    if isinstance(parameters, dict) and parameters:
        return child, _with_parameters(list(argv), parameters)
    return child, _with_input(list(argv), line["inputs"])


def read_line(s3: S3Client, uri: str, index: int) -> dict[str, Any]:
    """Line `index` of the manifest, read as a stream up to that line (a manifest of 10,000 lines is
    never held whole)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ManifestError(f"{MANIFEST_VARIABLE} is not an s3://bucket/key URI: {uri!r}")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        for number, raw in enumerate(body.iter_lines()):
            if number == index:
                return _parse(raw, uri, index)
    finally:
        body.close()
    raise ManifestError(f"manifest {uri} has no line for array index {index}")


def _parse(raw: bytes, uri: str, index: int) -> dict[str, Any]:
    try:
        line = json.loads(raw)
    except ValueError:
        line = None
    if (
        not isinstance(line, dict)
        or line.get("index") != index
        or not all(isinstance(line.get(name), str) and line[name] for name in ("job_id", "output_prefix"))
        or not isinstance(line.get("attempt"), int)
        or not isinstance(line.get("inputs"), list)
    ):
        raise ManifestError(f"manifest {uri} line {index} is not array index {index}'s job: {raw[:200]!r}")
    return line


def _with_parameters(argv: list[str], parameters: dict[str, Any]) -> list[str]:
    """Each `--<name>` of the command set to the child's value of parameter <name> (underscores as
    hyphens, as the job definitions spell their flags); a flag the command lacks is added."""
    for name, value in sorted(parameters.items()):
        argv = _with_flag(argv, "--" + name.replace("_", "-"), str(value))
    return argv


def _with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    if flag in argv[:-1]:
        at = argv.index(flag)
        return [*argv[:at], flag, value, *argv[at + 2 :]]
    return [*argv, flag, value]


def _with_input(argv: list[str], inputs: list[Any]) -> list[str]:
    """`--input` set to the child's one input (a job with no pinned input keeps the command's)."""
    uris = [entry.get("uri") for entry in inputs if isinstance(entry, dict)]
    if len(uris) != 1 or not isinstance(uris[0], str):
        return argv
    return _with_flag(argv, "--input", uris[0])
