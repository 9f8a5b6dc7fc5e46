"""The example workers against S3 (moto): their outputs, their exit codes, and the module run as a process."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from tests.support import BreaksOnce, closed_port
from workers import checksum_manifest, common, sort_large, word_count
from workers.common import MIB, Job, S3Location, StepLog
from workers.word_count import Counts

ROOT = Path(__file__).resolve().parents[2]
INPUT_BUCKET = "batchplane-test-ingest"
OUTPUT_BUCKET = "batchplane-test-artifacts"
# A space and a non-ASCII character, never encoded.
INPUT_KEY = "incoming/analytics/sort/red flowerÉ notes.txt"
INPUT_URI = f"s3://{INPUT_BUCKET}/{INPUT_KEY}"
OUTPUT_PREFIX = f"s3://{OUTPUT_BUCKET}/outputs/analytics/01JTESTJOB/"
OUTPUT_KEY_PREFIX = "outputs/analytics/01JTESTJOB/"
TEXT = "alpha beta\n  gamma\tdelta épsilon\n\nlast line without newline".encode()

WORKERS = {
    "word_count": word_count.main,
    "sort_large": sort_large.main,
    "checksum_manifest": checksum_manifest.main,
}
EXTRA_ARGUMENTS = {
    "word_count": ["--mode", "both"],
    "sort_large": ["--unique", "false", "--working-set-mib", "1"],
    "checksum_manifest": ["--chunk-mib", "1"],
}
_JOB_VARIABLES = ("AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ATTEMPT", "BATCHPLANE_JOB_ID", "BATCHPLANE_ATTEMPT")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No endpoint override, no Batch identity, and the job's output prefix (tests/conftest.py gives
    fake credentials and one region)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", *_JOB_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(common.OUTPUT_PREFIX_VARIABLE, OUTPUT_PREFIX)


@pytest.fixture
def s3(environment: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield client


def put_input(s3: Any, body: bytes) -> None:
    s3.put_object(Bucket=INPUT_BUCKET, Key=INPUT_KEY, Body=body)


def output(s3: Any, name: str) -> bytes:
    body: bytes = s3.get_object(Bucket=OUTPUT_BUCKET, Key=OUTPUT_KEY_PREFIX + name)["Body"].read()
    return body


def output_json(s3: Any, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(output(s3, name))
    return document


def output_names(s3: Any) -> list[str]:
    listing = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=OUTPUT_KEY_PREFIX)
    return [item["Key"].removeprefix(OUTPUT_KEY_PREFIX) for item in listing.get("Contents", [])]


# ---- word_count --------------------------------------------------------------------------------


def test_word_count_counts_lines_words_and_bytes_like_wc(s3: Any) -> None:
    # Given a text whose last line has no newline
    put_input(s3, TEXT)

    # When the worker runs in its default mode
    code = word_count.main(["--input", INPUT_URI])

    # Then counts.json under the output prefix holds all three counts of that object
    assert code == 0
    assert output_json(s3, "counts.json") == {
        "input": INPUT_URI,
        "mode": "both",
        "lines": 4,
        "words": 9,
        "bytes": len(TEXT),
    }


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("words", {"words": 9, "bytes": len(TEXT)}), ("lines", {"lines": 4, "bytes": len(TEXT)})],
)
def test_word_count_mode_selects_what_is_counted(s3: Any, mode: str, expected: dict[str, int]) -> None:
    # Given a text object
    put_input(s3, TEXT)

    # When the worker counts only words, or only lines
    code = word_count.main(["--input", INPUT_URI, "--mode", mode])

    # Then only that count (and the size) is reported
    assert code == 0
    assert output_json(s3, "counts.json") == {"input": INPUT_URI, "mode": mode, **expected}


@given(
    data=st.binary(max_size=64).map(lambda b: b.translate(bytes.maketrans(b"\x00\x01", b" \n"))),
    cuts=st.data(),
)
def test_counts_do_not_depend_on_where_the_stream_is_cut(data: bytes, cuts: st.DataObject) -> None:
    # Given any text cut into pieces at any points
    points = sorted(cuts.draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *points, len(data)]
    counts = Counts()

    # When the pieces are fed in order
    for start, end in itertools.pairwise(bounds):
        counts.feed(data[start:end])

    # Then the counts are those of the whole text
    assert counts.words == len(data.split())
    assert counts.lines == data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert counts.size == len(data)


def test_batch_identity_goes_into_the_json_and_the_object_metadata(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a run inside Batch job attempt 2 of batchplane job 01JTESTJOB
    put_input(s3, TEXT)
    monkeypatch.setenv("AWS_BATCH_JOB_ID", "c0ffee00-1234-5678-9abc-def012345678")
    monkeypatch.setenv("AWS_BATCH_JOB_ATTEMPT", "1")
    monkeypatch.setenv("BATCHPLANE_JOB_ID", "01JTESTJOB")
    monkeypatch.setenv("BATCHPLANE_ATTEMPT", "2")

    # When the worker writes its output
    assert word_count.main(["--input", INPUT_URI, "--mode", "lines"]) == 0

    # Then the output says which job and attempt made it, in its body and in its metadata
    document = output_json(s3, "counts.json")
    assert document["batch_job_id"] == "c0ffee00-1234-5678-9abc-def012345678"
    assert document["attempt"] == 1
    assert (document["batchplane_job_id"], document["batchplane_attempt"]) == ("01JTESTJOB", 2)
    head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=OUTPUT_KEY_PREFIX + "counts.json")
    assert head["Metadata"] == {
        "batch-job-id": "c0ffee00-1234-5678-9abc-def012345678",
        "attempt": "1",
        "batchplane-job-id": "01JTESTJOB",
        "batchplane-attempt": "2",
    }
    assert head["ContentType"] == "application/json"


# ---- sort_large --------------------------------------------------------------------------------


def test_sort_large_unique_sorts_by_bytes_and_keeps_one_of_each_line(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given lines with a duplicate, a non-ASCII line and no final newline
    put_input(s3, "pear\napple\npear\nÉclair\nbanana".encode())

    # When the worker sorts them uniquely with a small working set
    code = sort_large.main(["--input", INPUT_URI, "--unique", "true", "--working-set-mib", "1"])

    # Then sorted.txt holds each line once, in byte order, each ending with a newline
    assert code == 0
    assert output(s3, "sorted.txt") == "apple\nbanana\npear\nÉclair\n".encode()
    log = capsys.readouterr().err
    assert "sort_large: working set 1 MiB" in log
    assert f"sort_large: input {INPUT_URI}" in log
    assert "sort_large: size 30 bytes" in log
    assert f"sort_large: output {OUTPUT_PREFIX}sorted.txt" in log


def test_sort_large_keeps_duplicates_unless_asked(s3: Any) -> None:
    # Given lines with duplicates and a final newline
    put_input(s3, b"b\na\nb\n\na\n")

    # When the worker sorts them without --unique
    code = sort_large.main(["--input", INPUT_URI, "--unique", "false", "--working-set-mib", "1"])

    # Then every line is kept, the empty one first
    assert code == 0
    assert output(s3, "sorted.txt") == b"\na\na\nb\nb\n"


def test_working_set_is_resident_not_merely_reserved() -> None:
    # When the worker takes its working set
    held = sort_large.hold_working_set(2)

    # Then it has the size asked for and every byte was written
    assert len(held) == 2 * MIB
    assert held.count(b"\xa5") == 2 * MIB


def test_working_set_by_default_is_over_the_first_attempts_memory_and_under_the_retrys() -> None:
    assert 256 < sort_large.WORKING_SET_MIB <= 512 - 100


# ---- checksum_manifest -------------------------------------------------------------------------


def test_checksum_manifest_hashes_the_object_chunk_by_chunk(s3: Any) -> None:
    # Given a 2.5 MiB object
    data = random.Random(7).randbytes(5 * MIB // 2)
    put_input(s3, data)

    # When the worker hashes it in 1 MiB chunks
    code = checksum_manifest.main(["--input", INPUT_URI, "--chunk-mib", "1"])

    # Then the manifest has two full chunks and a half one, each hash matching hashlib's
    assert code == 0
    manifest = output_json(s3, "manifest.json")
    assert manifest["input"] == INPUT_URI
    assert manifest["size"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["chunk_size"] == MIB
    assert manifest["chunks"] == [
        {"offset": offset, "size": size, "sha256": hashlib.sha256(data[offset : offset + size]).hexdigest()}
        for offset, size in [(0, MIB), (MIB, MIB), (2 * MIB, MIB // 2)]
    ]


def test_checksum_manifest_of_an_empty_object_has_no_chunks(s3: Any) -> None:
    put_input(s3, b"")

    assert checksum_manifest.main(["--input", INPUT_URI, "--chunk-mib", "64"]) == 0

    manifest = output_json(s3, "manifest.json")
    assert (manifest["size"], manifest["sha256"], manifest["chunks"]) == (0, hashlib.sha256().hexdigest(), [])


# ---- the input stream --------------------------------------------------------------------------


def test_a_broken_input_stream_resumes_at_its_offset(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an input of several pieces whose stream breaks after the first
    data = random.Random(3).randbytes(3 * MIB + 5)
    put_input(s3, data)
    job = Job(log=StepLog("test"), s3=s3, output_prefix=S3Location.parse(OUTPUT_PREFIX, what="prefix"))
    source = job.open_input(S3Location(INPUT_BUCKET, INPUT_KEY))
    source._body = BreaksOnce(source._body)

    # When it is read to the end
    read = b"".join(source.pieces())

    # Then the object is read whole, once, by reopening at the byte where the stream broke
    assert read == data
    assert f"input stream broke at byte {MIB}" in capsys.readouterr().err


# ---- failures and exit codes -------------------------------------------------------------------


@pytest.mark.parametrize("worker", WORKERS)
def test_missing_input_object_exits_1_with_one_line(
    s3: Any, capsys: pytest.CaptureFixture[str], worker: str
) -> None:
    # Given no object at the input URI
    # When a worker is run on it
    code = WORKERS[worker](["--input", INPUT_URI, *EXTRA_ARGUMENTS[worker]])

    # Then it fails permanently, says so in one line, and writes nothing
    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [f"{worker}: error: input object not found: {INPUT_URI}"]
    assert output_names(s3) == []


@pytest.mark.parametrize(
    ("worker", "arguments", "complaint"),
    [
        ("word_count", ["--input", INPUT_URI, "--mode", "characters"], "invalid choice: 'characters'"),
        ("word_count", ["--mode", "words"], "the following arguments are required: --input"),
        ("word_count", ["--input", "https://example.com/a.txt"], "input is not an s3:// URI"),
        ("word_count", ["--input", f"s3://{INPUT_BUCKET}/"], "input names no object key"),
        ("sort_large", ["--input", INPUT_URI, "--unique", "yes"], "expected true or false, not 'yes'"),
        ("sort_large", ["--input", INPUT_URI, "--working-set-mib", "-1"], "must be at least 0"),
        ("checksum_manifest", ["--input", INPUT_URI, "--chunk-mib", "0"], "must be at least 1"),
        ("checksum_manifest", ["--input", INPUT_URI, "--chunk-mib", "big"], "not a whole number"),
    ],
)
def test_bad_arguments_exit_1_not_2(
    environment: None, capsys: pytest.CaptureFixture[str], worker: str, arguments: list[str], complaint: str
) -> None:
    # When a worker is given arguments it cannot use
    code = WORKERS[worker](arguments)

    # Then it exits 1 (argparse's 2 would be an unknown code to the retry rules) with one line
    assert code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{worker}: error: ")
    assert complaint in line


def test_missing_output_prefix_exits_1(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(common.OUTPUT_PREFIX_VARIABLE)

    assert word_count.main(["--input", INPUT_URI]) == 1


def test_throttled_s3_exits_75(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given S3 still answering SlowDown after botocore's own retries
    client = boto3.client("s3")
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_object",
        service_error_code="SlowDown",
        service_message="Please reduce your request rate.",
        http_status_code=503,
    )
    stubber.activate()
    monkeypatch.setattr(common, "s3_client", lambda: client)

    # When a worker reads its input
    code = checksum_manifest.main(["--input", INPUT_URI, "--chunk-mib", "1"])

    # Then it exits EX_TEMPFAIL, which the retry rules retry
    assert code == 75


def test_unreachable_s3_exits_75(environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an S3 endpoint nobody listens on (one attempt, so that the test does not wait for backoff)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    # When a worker reads its input
    code = word_count.main(["--input", INPUT_URI])

    # Then it exits EX_TEMPFAIL
    assert code == 75


# ---- staying inside the job's own data ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../other-job/counts.json", "/counts.json", "a//b.json", "./x", "%2e%2e/x", ""]
)
def test_a_worker_writes_nowhere_but_under_its_output_prefix(s3: Any, name: str) -> None:
    # Given a job whose outputs go under outputs/analytics/01JTESTJOB/
    job = Job.from_environment(StepLog("test"))

    # When it is asked to write an output whose name would leave that prefix
    with pytest.raises(common.OutsideBoundary):
        job.write(name, b"x", content_type="text/plain")

    # Then nothing is written anywhere in the output bucket
    assert s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("KeyCount") == 0


def test_a_nested_output_name_stays_under_the_prefix(s3: Any) -> None:
    job = Job.from_environment(StepLog("test"))

    target = job.write("parts/part-0001.csv", b"x", content_type="text/csv")

    assert target.uri == f"{OUTPUT_PREFIX}parts/part-0001.csv"


@pytest.mark.parametrize(
    ("prefix", "job_variables"),
    [
        (f"s3://{OUTPUT_BUCKET}/outputs/", {}),
        (f"s3://{OUTPUT_BUCKET}/incoming/analytics/", {}),
        (f"s3://{OUTPUT_BUCKET}/outputs/analytics/../finance/01JTESTJOB/", {}),
        (f"s3://{OUTPUT_BUCKET}/outputs/finance/01JOTHERJOB/attempt-1/", {"BATCHPLANE_JOB_ID": "01JTESTJOB"}),
        (f"s3://{OUTPUT_BUCKET}/outputs/analytics/01JTESTJOB/attempt-1/", {"BATCHPLANE_ATTEMPT": "2"}),
    ],
)
def test_an_output_prefix_that_is_not_the_jobs_own_exits_1_writing_nothing(
    s3: Any, monkeypatch: pytest.MonkeyPatch, prefix: str, job_variables: dict[str, str]
) -> None:
    # Given an output prefix that is no job's, or another job's or attempt's than this one
    put_input(s3, TEXT)
    monkeypatch.setenv(common.OUTPUT_PREFIX_VARIABLE, prefix)
    for name, value in job_variables.items():
        monkeypatch.setenv(name, value)

    # When a worker runs
    code = word_count.main(["--input", INPUT_URI])

    # Then it fails for good before writing anything
    assert code == 1
    assert s3.list_objects_v2(Bucket=OUTPUT_BUCKET).get("KeyCount") == 0


def test_another_tenants_output_is_refused_as_an_input(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # Given tenant finance's output in the output bucket
    theirs = "outputs/finance/01JOTHERJOB/attempt-1/counts.json"
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=theirs, Body=b"secret words\n")

    # When a job of tenant analytics is run on it (the job role itself could read it)
    code = word_count.main(["--input", f"s3://{OUTPUT_BUCKET}/{theirs}"])

    # Then it exits 1 saying why, and writes nothing
    assert code == 1
    assert "not under this tenant's outputs/analytics/" in capsys.readouterr().err
    assert output_names(s3) == []


def test_the_tenants_own_output_is_a_valid_input(s3: Any) -> None:
    mine = "outputs/analytics/01JEARLIER/attempt-1/sorted.txt"
    s3.put_object(Bucket=OUTPUT_BUCKET, Key=mine, Body=b"a b\n")

    assert word_count.main(["--input", f"s3://{OUTPUT_BUCKET}/{mine}"]) == 0
    assert output_json(s3, "counts.json")["words"] == 2


# ---- as the job definition runs it -------------------------------------------------------------


def test_sort_large_runs_as_a_module_the_way_the_job_definition_runs_it(moto_server: str) -> None:
    # Given S3 on a local endpoint, an input object, and a Batch job's environment
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "BATCHPLANE_"))}
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_BATCH_JOB_ID": "c0ffee00-1234-5678-9abc-def012345678",
        "AWS_BATCH_JOB_ATTEMPT": "1",
        common.OUTPUT_PREFIX_VARIABLE: OUTPUT_PREFIX,
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    put_input(s3, "pear\napple\npear\nÉclair\n".encode())

    # When `python -m workers.sort_large --input Ref::input --unique Ref::unique` runs from the repo root
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.sort_large",
            "--input",
            INPUT_URI,
            "--unique",
            "true",
            "--working-set-mib=1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it exits 0 having logged its steps, and its output is in S3 with the job's metadata
    assert done.returncode == 0, done.stderr
    assert f"sort_large: input {INPUT_URI}" in done.stderr
    assert "sort_large: done" in done.stderr
    assert output(s3, "sorted.txt") == "apple\npear\nÉclair\n".encode()
    head = s3.head_object(Bucket=OUTPUT_BUCKET, Key=OUTPUT_KEY_PREFIX + "sorted.txt")
    assert head["Metadata"] == {"batch-job-id": "c0ffee00-1234-5678-9abc-def012345678", "attempt": "1"}
