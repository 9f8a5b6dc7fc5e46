"""The example workers read exactly the input version or content their job was made for (BATCHPLANE_INPUTS),
and end the attempt with exit code 66 when S3 no longer holds it (moto in-process)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchplane.lifecycle.classify import INPUT_CHANGED_EXIT_CODE
from batchplane.service.dispatch import INPUTS_VARIABLE
from tests.support import BreaksOnce
from workers import checksum_manifest, common, pins, sort_large, word_count
from workers.common import MIB, Job, S3Location, StepLog

VERSIONED = "batchplane-test-versioned"
UNVERSIONED = "batchplane-test-unversioned"
OUTPUT_BUCKET = "batchplane-test-artifacts"
KEY = "incoming/word-count/red flowerÉ notes.txt"
OUTPUT_PREFIX = f"s3://{OUTPUT_BUCKET}/outputs/file-drop/01JTESTJOB/attempt-1/"
FIRST = b"six b\n"  # the version the job was made for: 6 bytes
SECOND = b"thirty bytes of newer content\n"  # written after it: 30 bytes

RUNS = {
    "word_count": lambda uri: word_count.main(["--input", uri, "--mode", "both"]),
    "sort_large": lambda uri: sort_large.main(
        ["--input", uri, "--unique", "false", "--working-set-mib", "1"]
    ),
    "checksum_manifest": lambda uri: checksum_manifest.main(["--input", uri, "--chunk-mib", "1"]),
}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A versioned and an unversioned input bucket and the artifact bucket; the job's output prefix."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", INPUTS_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(common.OUTPUT_PREFIX_VARIABLE, OUTPUT_PREFIX)
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (VERSIONED, UNVERSIONED, OUTPUT_BUCKET):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
        yield client


def pin(monkeypatch: pytest.MonkeyPatch, *entries: dict[str, str]) -> None:
    """BATCHPLANE_INPUTS as the dispatcher sets it."""
    monkeypatch.setenv(INPUTS_VARIABLE, json.dumps(list(entries)))


def counts(s3: Any) -> dict[str, Any]:
    body = s3.get_object(Bucket=OUTPUT_BUCKET, Key=OUTPUT_PREFIX.split("/", 3)[3] + "counts.json")["Body"]
    document: dict[str, Any] = json.loads(body.read())
    return document


def outputs(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("Contents", [])]


def test_a_pinned_version_is_read_even_after_a_newer_one_is_written(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job made for the first version of a key, and a second version written since
    first = s3.put_object(Bucket=VERSIONED, Key=KEY, Body=FIRST)["VersionId"]
    s3.put_object(Bucket=VERSIONED, Key=KEY, Body=SECOND)
    uri = f"s3://{VERSIONED}/{KEY}"
    pin(monkeypatch, {"uri": uri, "version_id": first})

    # When the worker runs
    code = word_count.main(["--input", uri])

    # Then it counted the version its job was made for, and said which it read
    assert code == 0
    assert counts(s3)["bytes"] == len(FIRST)
    assert f"word_count: input {uri} (version {first})" in capsys.readouterr().err


def test_an_input_pinned_to_its_etag_is_read_while_it_is_unchanged(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an unversioned input pinned to its ETag as S3's events carry it (no quotes)
    etag = s3.put_object(Bucket=UNVERSIONED, Key=KEY, Body=FIRST)["ETag"].strip('"')
    uri = f"s3://{UNVERSIONED}/{KEY}"
    pin(monkeypatch, {"uri": uri, "etag": etag})

    # When the worker runs, Then it reads it
    assert word_count.main(["--input", uri]) == 0
    assert counts(s3)["bytes"] == len(FIRST)


@pytest.mark.parametrize("worker", RUNS)
def test_an_input_overwritten_since_the_job_was_made_ends_the_attempt_as_changed(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], worker: str
) -> None:
    # Given a job made for an unversioned object, overwritten before the worker reads it
    etag = s3.put_object(Bucket=UNVERSIONED, Key=KEY, Body=FIRST)["ETag"].strip('"')
    s3.put_object(Bucket=UNVERSIONED, Key=KEY, Body=SECOND)
    uri = f"s3://{UNVERSIONED}/{KEY}"
    pin(monkeypatch, {"uri": uri, "etag": etag})

    # When the worker runs
    code = RUNS[worker](uri)

    # Then it processes nothing, exits with the input-changed code and says which input and what it expected
    assert code == common.EXIT_INPUT_CHANGED == 66
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        f'{worker}: error: input changed: {uri} has changed; the job was made for its ETag "{etag}"'
    ]
    assert outputs(s3) == []


def test_a_pinned_version_that_was_deleted_ends_the_attempt_as_changed(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job made for a version that was deleted for good since (DeleteObject with its VersionId)
    first = s3.put_object(Bucket=VERSIONED, Key=KEY, Body=FIRST)["VersionId"]
    s3.put_object(Bucket=VERSIONED, Key=KEY, Body=SECOND)
    s3.delete_object(Bucket=VERSIONED, Key=KEY, VersionId=first)
    uri = f"s3://{VERSIONED}/{KEY}"
    pin(monkeypatch, {"uri": uri, "version_id": first})

    # When the worker runs, Then it exits as changed rather than counting the newer version
    assert word_count.main(["--input", uri]) == 66
    assert f"input changed: {uri} no longer exists; the job was made for its version {first}" in (
        capsys.readouterr().err
    )
    assert outputs(s3) == []


def test_an_input_the_job_did_not_pin_is_read_as_it_is(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given pins for another object only
    s3.put_object(Bucket=UNVERSIONED, Key=KEY, Body=FIRST)
    s3.put_object(Bucket=UNVERSIONED, Key=KEY, Body=SECOND)
    pin(monkeypatch, {"uri": f"s3://{UNVERSIONED}/other.txt", "etag": "0" * 32})

    # When the worker runs on this one, Then it reads what is there
    assert word_count.main(["--input", f"s3://{UNVERSIONED}/{KEY}"]) == 0
    assert counts(s3)["bytes"] == len(SECOND)


def test_a_broken_stream_of_a_pinned_version_resumes_on_that_version(s3: Any) -> None:
    # Given a pinned first version of several pieces, a newer version, and a stream that breaks
    data = random.Random(5).randbytes(2 * MIB + 7)
    first = s3.put_object(Bucket=VERSIONED, Key=KEY, Body=data)["VersionId"]
    s3.put_object(Bucket=VERSIONED, Key=KEY, Body=SECOND)
    location = S3Location(VERSIONED, KEY)
    job = Job(
        log=StepLog("test"),
        s3=s3,
        output_prefix=S3Location.parse(OUTPUT_PREFIX, what="prefix"),
        pins={location.uri: pins.Pin(version_id=first)},
    )
    source = job.open_input(location)
    source._body = BreaksOnce(source._body)

    # When it is read to the end, Then the rest came from the same version
    assert b"".join(source.pieces()) == data


@pytest.mark.parametrize(
    "value",
    ["{not json", '{"uri": "s3://b/k"}', '[{"version_id": "v1"}]', '[{"uri": "s3://bucket/k"}]'],
)
def test_pins_the_worker_cannot_read_exit_1(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    # Given BATCHPLANE_INPUTS that is not what the dispatcher writes
    monkeypatch.setenv(INPUTS_VARIABLE, value)

    # When a worker starts, Then it refuses to guess which content to read
    assert word_count.main(["--input", f"s3://{UNVERSIONED}/{KEY}"]) == 1
    assert f"word_count: error: {INPUTS_VARIABLE} " in capsys.readouterr().err


def test_the_workers_contract_is_the_one_batchplane_classifies_and_sets() -> None:
    assert common.EXIT_INPUT_CHANGED == INPUT_CHANGED_EXIT_CODE
    assert pins.INPUTS_VARIABLE == INPUTS_VARIABLE
