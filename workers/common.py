"""What every worker shares: arguments, S3 locations, the input stream, the outputs and the exit codes.

A worker's `main` hands `run` its argument parser and its work; `run` parses the arguments, builds the
`Job` (S3 client, output prefix, pinned inputs, Batch identity) and turns every failure into one line
on stderr and an exit code: 1 for what a retry cannot fix, 75 for what it can, 66 for an input that is
no longer what the job was made for, 65 for an array child that its manifest does not name.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import boto3
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from workers.manifest import ManifestError, for_array_child
from workers.pins import Pin, pins_from

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef, GetObjectRequestTypeDef

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_TEMPFAIL = 75  # sysexits.h EX_TEMPFAIL; the job types' retry rules retry exit code 75
# sysexits.h EX_NOINPUT: a pinned input is no longer what the job was made for. batchplane classes it
# INPUT_CHANGED and never retries it (lifecycle/classify.py::INPUT_CHANGED_EXIT_CODE).
EXIT_INPUT_CHANGED = 66
# sysexits.h EX_DATAERR: an array child whose manifest has no line for its index (workers/manifest.py).
EXIT_NOT_IN_MANIFEST = 65

OUTPUT_PREFIX_VARIABLE = "BATCHPLANE_OUTPUT_PREFIX"
MIB = 1024 * 1024
PIECE_SIZE = MIB  # bytes asked of the input stream per read
MAX_RESUMES = 3  # a broken input stream is reopened at its offset this many times, then exit 75

# The bucket names batchplane's policy accepts in an input parameter.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Where the dispatcher says a job's outputs go: outputs/<tenant>/<job_id>/attempt-<n>/ (policy/outputs.py).
_OUTPUT_PREFIX_KEY = re.compile(
    r"^outputs/(?P<tenant>[A-Za-z0-9][A-Za-z0-9_.@+=-]*)/(?P<job_id>[A-Za-z0-9][A-Za-z0-9_-]*)/"
    r"(?:attempt-(?P<attempt>[1-9][0-9]*)/)?$"
)
# An output's name: a relative key, never one that climbs out of the prefix or reads differently decoded.
_OUTPUT_NAME_SEGMENT = re.compile(r"^[^\x00-\x1f\x7f/%]+$")

# S3 error codes that a later attempt may not see (botocore has already retried them).
_TRANSIENT_CODES = frozenset(
    {
        "BandwidthLimitExceeded",
        "InternalError",
        "OperationAborted",
        "PriorRequestNotComplete",
        "RequestLimitExceeded",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "403"})
# The reading side of an S3 connection failing: reset, closed, timed out, cut short.
_STREAM_ERRORS = (HTTPClientError, BotoConnectionError, IncompleteReadError)


class WorkerError(Exception):
    """A failure reported as one line on stderr and an exit code, without a traceback."""

    exit_code = EXIT_FAILURE


class BadArguments(WorkerError):
    """The command line or the environment is wrong: no retry can help."""


class InputNotFound(WorkerError):
    """The input object (or its bucket) does not exist."""


class OutsideBoundary(WorkerError):
    """The job was asked to read or write where its tenant's data does not live: no retry can help."""


class TransientError(WorkerError):
    """S3 failed in a way a later attempt may not see."""

    exit_code = EXIT_TEMPFAIL


class InputChanged(WorkerError):
    """S3 no longer holds the input's version or content that the job was made for: a retry would meet
    the same object, and reading what is there now would process other content."""

    exit_code = EXIT_INPUT_CHANGED


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises BadArguments instead of exiting 2, so that every permanent failure exits 1."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split())
        raise BadArguments(f"{message} ({usage})")

    def add_input(self, what: str) -> None:
        """The job's input object, `--input s3://bucket/key` (as the job definitions pass it)."""
        self.add_argument(
            "--input", required=True, type=input_location, metavar="S3_URI", help=f"s3://bucket/key of {what}"
        )


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key, the key exactly as S3 stores it (spaces and unicode included, never encoded)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str, *, what: str) -> S3Location:
        if not uri.startswith("s3://"):
            raise BadArguments(f"{what} is not an s3:// URI: {uri!r}")
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if not _BUCKET_NAME.match(bucket):
            raise BadArguments(f"{what} has no valid bucket name: {uri!r}")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def joinpath(self, name: str) -> S3Location:
        """The object `name` under this location taken as a prefix ("folder")."""
        prefix = self.key if not self.key or self.key.endswith("/") else f"{self.key}/"
        return S3Location(self.bucket, prefix + name)


def input_location(uri: str) -> S3Location:
    """argparse type of --input: an s3:// URI naming one object."""
    try:
        location = S3Location.parse(uri, what="input")
    except BadArguments as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None
    if not location.key:
        raise argparse.ArgumentTypeError(f"input names no object key: {uri!r}")
    return location


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text!r}")
        return value

    return parse


class StepLog:
    """One line on stderr per step, prefixed with the worker's name (CloudWatch keeps one event a line)."""

    def __init__(self, worker: str) -> None:
        self.worker = worker

    def __call__(self, message: str) -> None:
        print(f"{self.worker}: {message}", file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        self(f"error: {' '.join(message.split())}")


def s3_client() -> S3Client:
    """A plain client: endpoint (AWS_ENDPOINT_URL[_S3]), region and credentials come from the environment."""
    return boto3.client("s3")


class InputObject:
    """An S3 object read as a stream of pieces: with a pin, exactly the pinned version (VersionId) or
    content (IfMatch on its ETag); without, the object as it is at the first read. A stream that breaks
    is reopened where it stopped, on the same content (If-Match on the ETag of the first read), so a
    long read survives a reset connection."""

    def __init__(self, job: Job, location: S3Location, pin: Pin | None = None) -> None:
        self.location = location
        self.pin = pin
        self._job = job
        response = self._get()
        self.size: int = response["ContentLength"]
        self.etag: str = response["ETag"]
        self._body = response["Body"]

    def _get(self, offset: int | None = None) -> GetObjectOutputTypeDef:
        request: GetObjectRequestTypeDef = {"Bucket": self.location.bucket, "Key": self.location.key}
        if self.pin is not None and self.pin.version_id:
            request["VersionId"] = self.pin.version_id
        if offset is not None:  # the rest of the content already being read
            request["Range"] = f"bytes={offset}-"
            request["IfMatch"] = self.etag
        elif self.pin is not None and not self.pin.version_id:
            request["IfMatch"] = self.pin.if_match
        try:
            return self._job.s3.get_object(**request)
        except ClientError as error:
            failure = self._failure(error_code(error))
            if failure is None:
                raise
            raise failure from error

    def _failure(self, code: str) -> WorkerError | None:
        """What an S3 error code means for this input; None when it says nothing about the input."""
        uri, pin = self.location.uri, self.pin
        if pin is not None and code in (*_MISSING_CODES, "NoSuchVersion", "PreconditionFailed"):
            now = "no longer exists" if code != "PreconditionFailed" else "has changed"
            return InputChanged(f"input changed: {uri} {now}; the job was made for its {pin}")
        if code in _MISSING_CODES:
            return InputNotFound(f"input object not found: {uri}")
        if code in _DENIED_CODES:
            return WorkerError(
                f"access denied to input {uri} (S3 answers AccessDenied, not NoSuchKey, "
                "for a missing object to a caller without s3:ListBucket)"
            )
        if code == "PreconditionFailed":
            return WorkerError(f"input {uri} changed while it was being read")
        return None

    def pieces(self, piece_size: int = PIECE_SIZE) -> Iterator[bytes]:
        """The object's bytes in order, at most `piece_size` at a time, exactly `size` of them in all."""
        body: StreamingBody = self._body
        offset = 0
        resumes = 0
        while offset < self.size:
            try:
                piece = body.read(min(piece_size, self.size - offset))
                if not piece:
                    raise IncompleteReadError(actual_bytes=offset, expected_bytes=self.size)
            except _STREAM_ERRORS as broken:
                if resumes == MAX_RESUMES:
                    raise TransientError(
                        f"reading {self.location.uri} failed at byte {offset} "
                        f"after {resumes} resumes: {broken}"
                    ) from broken
                resumes += 1
                self._job.log(f"input stream broke at byte {offset} ({broken}); resuming")
                body.close()
                body = self._get(offset)["Body"]
                continue
            offset += len(piece)
            yield piece
        body.close()

    def read_all(self) -> bytearray:
        """The whole object in one buffer of exactly its size (no second copy while reading)."""
        buffer = bytearray(self.size)
        view = memoryview(buffer)
        offset = 0
        for piece in self.pieces():
            view[offset : offset + len(piece)] = piece
            offset += len(piece)
        view.release()
        return buffer


def _attempt(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def output_prefix_of(environ: Mapping[str, str]) -> S3Location:
    """BATCHPLANE_OUTPUT_PREFIX, checked to be a job's own prefix (and, when the dispatcher says which
    job and attempt this is, that job's and attempt's), so every write stays under it."""
    prefix = environ.get(OUTPUT_PREFIX_VARIABLE, "")
    if not prefix:
        raise BadArguments(f"{OUTPUT_PREFIX_VARIABLE} is not set (expected s3://bucket/prefix/)")
    location = S3Location.parse(prefix, what=OUTPUT_PREFIX_VARIABLE)
    match = _OUTPUT_PREFIX_KEY.fullmatch(location.key)
    if match is None:
        raise BadArguments(
            f"{OUTPUT_PREFIX_VARIABLE} is not a job's output prefix, "
            f"s3://bucket/outputs/<tenant>/<job_id>/[attempt-<n>/]: {prefix!r}"
        )
    job_id, attempt = environ.get("BATCHPLANE_JOB_ID"), environ.get("BATCHPLANE_ATTEMPT")
    if (job_id and match["job_id"] != job_id) or (attempt and match["attempt"] not in (None, attempt)):
        raise BadArguments(f"{OUTPUT_PREFIX_VARIABLE} {prefix!r} is not job {job_id} attempt {attempt}'s")
    return location


@dataclass
class Job:
    """One run of a worker: its S3 client, where its outputs go, and which Batch job and attempt it is."""

    log: StepLog
    s3: S3Client
    output_prefix: S3Location
    batch_job_id: str | None = None
    attempt: int | str | None = None
    batchplane_job_id: str | None = None
    batchplane_attempt: int | str | None = None
    pins: Mapping[str, Pin] = field(default_factory=dict)  # by input URI (BATCHPLANE_INPUTS)

    @classmethod
    def from_environment(cls, log: StepLog, environ: Mapping[str, str] = os.environ) -> Job:
        try:
            pins = pins_from(environ)
        except ValueError as bad:
            raise BadArguments(str(bad)) from None
        return cls(
            log=log,
            s3=s3_client(),
            output_prefix=output_prefix_of(environ),
            pins=pins,
            batch_job_id=environ.get("AWS_BATCH_JOB_ID") or None,
            attempt=_attempt(environ.get("AWS_BATCH_JOB_ATTEMPT") or None),
            batchplane_job_id=environ.get("BATCHPLANE_JOB_ID") or None,
            batchplane_attempt=_attempt(environ.get("BATCHPLANE_ATTEMPT") or None),
        )

    def identity(self) -> dict[str, str | int]:
        """The job's identity as output JSON fields, those that are known."""
        fields = {
            "batch_job_id": self.batch_job_id,
            "attempt": self.attempt,
            "batchplane_job_id": self.batchplane_job_id,
            "batchplane_attempt": self.batchplane_attempt,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def metadata(self) -> dict[str, str]:
        """The same identity as S3 user metadata (x-amz-meta-batch-job-id, x-amz-meta-attempt, ...)."""
        return {name.replace("_", "-"): str(value) for name, value in self.identity().items()}

    @property
    def tenant_outputs(self) -> str:
        """outputs/<tenant>/: the part of the output bucket that is this job's tenant's."""
        return "/".join(self.output_prefix.key.split("/")[:2]) + "/"

    def open_input(self, location: S3Location) -> InputObject:
        """The input, exactly as the job was made for it when BATCHPLANE_INPUTS pins it."""
        # Admission refuses another tenant's outputs as an input; the job role could still read them
        # (one role for every job), so the worker refuses them too.
        if location.bucket == self.output_prefix.bucket and not location.key.startswith(self.tenant_outputs):
            raise OutsideBoundary(f"input {location.uri} is not under this tenant's {self.tenant_outputs}")
        pin = self.pins.get(location.uri)
        self.log(f"input {location.uri}" + (f" ({pin})" if pin else ""))
        source = InputObject(self, location, pin)
        self.log(f"size {source.size} bytes")
        return source

    def write(self, name: str, body: bytes, *, content_type: str) -> S3Location:
        """Put `body` at `name` under the job's output prefix, and nowhere else."""
        segments = name.split("/")
        if any(not _OUTPUT_NAME_SEGMENT.fullmatch(s) or s in (".", "..") for s in segments):
            raise OutsideBoundary(f"output name {name!r} is not a plain relative key under the output prefix")
        target = self.output_prefix.joinpath(name)
        if target.bucket != self.output_prefix.bucket or not target.key.startswith(self.output_prefix.key):
            raise OutsideBoundary(f"output {target.uri} is outside {self.output_prefix.uri}")
        self.s3.put_object(
            Bucket=target.bucket,
            Key=target.key,
            Body=body,
            ContentType=content_type,
            Metadata=self.metadata(),
        )
        self.log(f"output {target.uri} ({len(body)} bytes)")
        return target

    def write_json(self, name: str, document: Mapping[str, object]) -> S3Location:
        """`document` and then the job's identity, as UTF-8 JSON (non-ASCII as is, not \\u-escaped)."""
        text = json.dumps({**document, **self.identity()}, indent=2, ensure_ascii=False) + "\n"
        return self.write(name, text.encode("utf-8"), content_type="application/json")


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError) -> bool:
    """Throttling and server-side failures: botocore retried them already, a later attempt may succeed."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return error_code(error) in _TRANSIENT_CODES or status == 429 or status >= 500


def run(
    log: StepLog,
    parser: ArgumentParser,
    argv: Sequence[str] | None,
    work: Callable[[Job, argparse.Namespace], None],
) -> int:
    """Parse the arguments, do the work, and map every failure to its exit code and one line on stderr."""
    try:
        environ, args = for_array_child(os.environ, sys.argv[1:] if argv is None else argv, s3_client)
        arguments = parser.parse_args(args)
        work(Job.from_environment(log, environ), arguments)
    except ManifestError as failure:
        log.error(str(failure))
        return EXIT_NOT_IN_MANIFEST
    except WorkerError as failure:
        log.error(str(failure))
        return failure.exit_code
    except ClientError as error:
        log.error(str(error))
        return EXIT_TEMPFAIL if is_transient(error) else EXIT_FAILURE
    except _STREAM_ERRORS as error:
        log.error(f"S3 unreachable or the connection broke: {error}")
        return EXIT_TEMPFAIL
    except BotoCoreError as error:  # no credentials, no region, a bad endpoint: configuration
        log.error(str(error))
        return EXIT_FAILURE
    log("done")
    return EXIT_OK
