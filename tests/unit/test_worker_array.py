"""An array job's child reads its job from the array's manifest (BATCHPLANE_MANIFEST, line
AWS_BATCH_JOB_ARRAY_INDEX) and then runs as that single job; a manifest without its line ends it with
exit code 65 (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from workers import common, manifest, word_count
from workers.pins import INPUTS_VARIABLE

INGEST = "batchplane-test-ingest"
ARTIFACTS = "batchplane-test-artifacts"
ARRAY = "bp-array-5c0e8f1a2b3d4c6e7f809a1b"
MANIFEST_URI = f"s3://{ARTIFACTS}/_arrays/{ARRAY}.jsonl"
# The array's shared command names some input; no child's own.
SHARED_ARGV = ["--input", f"s3://{INGEST}/incoming/shared-placeholder.txt", "--mode", "both"]
BODIES = [b"one\n", b"two words\n", b"three little words\n"]


def line(index: int, version_id: str) -> dict[str, Any]:
    job_id = f"01JARRAYJOB{index:015d}"
    return {
        "index": index,
        "job_id": job_id,
        "attempt": 1,
        "tenant": "analytics",
        "output_prefix": f"s3://{ARTIFACTS}/outputs/analytics/{job_id}/attempt-1/",
        "inputs": [{"uri": f"s3://{INGEST}/incoming/file-{index}.txt", "version_id": version_id}],
    }


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An ingest bucket with 3 inputs, the artifact bucket with a manifest of 3 lines naming them, and
    the array's environment as the coalescer sets it (no BATCHPLANE_JOB_ID of its own)."""
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
        INPUTS_VARIABLE,
        "BATCHPLANE_JOB_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(common.OUTPUT_PREFIX_VARIABLE, raising=False)
    monkeypatch.setenv(manifest.MANIFEST_VARIABLE, MANIFEST_URI)
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (INGEST, ARTIFACTS):
            client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=INGEST, VersioningConfiguration={"Status": "Enabled"})
        lines = []
        for index, body in enumerate(BODIES):
            put = client.put_object(Bucket=INGEST, Key=f"incoming/file-{index}.txt", Body=body)
            lines.append(json.dumps(line(index, put["VersionId"])))
        client.put_object(
            Bucket=ARTIFACTS, Key=f"_arrays/{ARRAY}.jsonl", Body="\n".join(lines).encode() + b"\n"
        )
        yield client


def outputs(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="outputs/").get("Contents", [])
    return [item["Key"] for item in listed]


def test_each_child_runs_as_its_manifest_lines_job(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for index, body in enumerate(BODIES):
        # Given child `index` of the array
        monkeypatch.setenv(manifest.INDEX_VARIABLE, str(index))

        # When the worker runs the array's shared command
        code = word_count.main(list(SHARED_ARGV))

        # Then it counted its own input, pinned version and all, and wrote under its job's attempt prefix
        assert code == 0
        expected = line(index, "")
        key = expected["output_prefix"].split("/", 3)[3] + "counts.json"
        counts = json.loads(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())
        assert counts["bytes"] == len(body)
        assert counts["batchplane_job_id"] == expected["job_id"]
        assert counts["batchplane_attempt"] == 1
    assert len(outputs(s3)) == len(BODIES)


@pytest.mark.parametrize("index", ["3", "10000"])
def test_a_child_whose_index_the_manifest_lacks_exits_65_and_writes_nothing(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], index: str
) -> None:
    # Given a child whose index is past the manifest's last line
    monkeypatch.setenv(manifest.INDEX_VARIABLE, index)

    # When the worker runs, Then it exits with the manifest's own code, says why, and writes nothing
    assert word_count.main(list(SHARED_ARGV)) == common.EXIT_NOT_IN_MANIFEST == 65
    errors = [text for text in capsys.readouterr().err.splitlines() if "error" in text]
    assert errors == [f"word_count: error: manifest {MANIFEST_URI} has no line for array index {index}"]
    assert outputs(s3) == []


def test_a_line_that_is_not_its_index_is_refused(
    s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a manifest whose line 1 says it is index 2
    broken = [line(0, "v"), line(2, "v"), line(2, "v")]
    s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"_arrays/{ARRAY}.jsonl",
        Body="\n".join(json.dumps(entry) for entry in broken).encode(),
    )
    monkeypatch.setenv(manifest.INDEX_VARIABLE, "1")

    # When child 1 runs, Then it refuses to guess which job it is
    assert word_count.main(list(SHARED_ARGV)) == 65
    assert "line 1 is not array index 1's job" in capsys.readouterr().err
    assert outputs(s3) == []


def test_without_an_array_index_the_manifest_is_not_read(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a single job's environment (no AWS_BATCH_JOB_ARRAY_INDEX) and the manifest gone
    s3.delete_object(Bucket=ARTIFACTS, Key=f"_arrays/{ARRAY}.jsonl")
    monkeypatch.setenv(common.OUTPUT_PREFIX_VARIABLE, line(0, "")["output_prefix"])

    # When the worker runs on the command's own input, Then it runs as that single job
    assert word_count.main(["--input", f"s3://{INGEST}/incoming/file-2.txt"]) == 0
    assert len(outputs(s3)) == 1


def test_a_child_takes_its_own_parameters_from_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a manifest line whose parameters differ from the shared command's (the first child's)
    own = {**line(1, "v1"), "parameters": {"input": f"s3://{INGEST}/incoming/file-1.txt", "mode": "lines"}}
    monkeypatch.setattr(manifest, "read_line", lambda _s3, _uri, _index: own)
    environ = {manifest.MANIFEST_VARIABLE: MANIFEST_URI, manifest.INDEX_VARIABLE: "1"}
    shared = ["--input", f"s3://{INGEST}/incoming/file-0.txt", "--mode", "both"]

    # When the child works out what to run
    child_environ, argv = manifest.for_array_child(environ, shared, lambda: None)  # type: ignore[arg-type,return-value]

    # Then every flag carries the child's own value, and the job is its line's
    assert argv == ["--input", f"s3://{INGEST}/incoming/file-1.txt", "--mode", "lines"]
    assert child_environ["BATCHPLANE_JOB_ID"] == own["job_id"]
