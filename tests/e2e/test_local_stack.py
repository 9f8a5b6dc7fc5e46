"""End to end on `batchplane local`: real worker processes, real events, real retries."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import Local
from tests.support import eventually, watch_queues

pytestmark = pytest.mark.e2e


def put_input(local: Local, key: str, body: bytes) -> str:
    bucket = local.info["ingest_bucket"]
    local.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def read_output(local: Local, uri: str) -> bytes:
    bucket, key = uri[5:].split("/", 1)
    return local.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_job_submitted_over_http_runs_its_worker_and_records_its_output(local: Local) -> None:
    # Given an input object under the tenant's prefix (outside the file-drop rules' prefixes)
    uri = put_input(local, "incoming/local/manual/notes for you.txt", b"one two three\nfour five\n")

    # When a word-count job is submitted over HTTP
    status, job = local.request("POST", "/jobs", {"job_type": "word-count", "parameters": {"input": uri}})
    assert status == 202, job

    # Then its worker runs, the job succeeds and its output is an artifact with the worker's result
    done = local.finished(job["job_id"])
    assert done["status"] == "SUCCEEDED", done["history"]
    [output] = [a for a in done["artifacts"] if a["role"] == "output"]
    assert output["uri"].endswith("/counts.json")
    counts = json.loads(read_output(local, output["uri"]))
    assert (counts["lines"], counts["words"]) == (2, 5)
    [attempt] = done["attempts"]
    assert (attempt["status"], attempt["capacity"], attempt["exit_code"]) == ("SUCCEEDED", "ON_DEMAND", 0)


def test_dropped_file_becomes_exactly_one_job(local: Local) -> None:
    # When a file is dropped into the ingest bucket under a file-drop rule's prefix
    uri = put_input(local, "incoming/local/word-count/dropped ü file.txt", b"alpha beta\n")

    # Then exactly one job of the tenant whose prefix it is (local) exists for it, and it succeeds
    def jobs_for_it() -> list[dict] | None:
        status, page = local.request("GET", "/jobs?job_type=word-count")
        assert status == 200
        found = [j for j in page["jobs"] if j["parameters"]["input"] == uri]
        return found or None

    [job] = eventually(jobs_for_it, what="the dropped file's job")
    assert local.finished(job["job_id"])["status"] == "SUCCEEDED"
    assert len(jobs_for_it() or []) == 1


def test_a_file_dropped_twice_at_once_makes_a_job_per_version_each_reading_its_own(local: Local) -> None:
    # Given a key dropped twice in a row, 6 bytes then 30 (the ingest bucket is versioned, and the
    # second write may well land before the first job's worker reads the key)
    s3, bucket, key = local.client("s3"), local.info["ingest_bucket"], "incoming/local/word-count/twice.txt"
    first = s3.put_object(Bucket=bucket, Key=key, Body=b"six b\n")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key=key, Body=b"thirty bytes of newer content\n")["VersionId"]
    uri = f"s3://{bucket}/{key}"

    # Then each version is a job of its own, and each counted the bytes of the version it was made for
    def jobs_for_it() -> list[dict] | None:
        status, page = local.request("GET", "/jobs?job_type=word-count")
        assert status == 200
        found = [j for j in page["jobs"] if j["parameters"]["input"] == uri]
        return found if len(found) == 2 else None

    counted: dict[str, int] = {}
    for job in eventually(jobs_for_it, what="a job per version"):
        done = local.finished(job["job_id"])
        assert done["status"] == "SUCCEEDED", done["history"]
        [read] = [a for a in done["artifacts"] if a["role"] == "input"]
        [output] = [a for a in done["artifacts"] if a["role"] == "output"]
        counted[read["version_id"]] = json.loads(read_output(local, output["uri"]))["bytes"]
    assert counted == {first: 6, second: 30}


def test_a_job_whose_input_changed_since_it_was_made_fails_as_input_changed(local: Local) -> None:
    # Given an object of the tenant's, overwritten after its first content's ETag was taken (under a
    # prefix no file-drop rule watches)
    s3, bucket, key = local.client("s3"), local.info["ingest_bucket"], "incoming/local/manual/changed.txt"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=b"six b\n")["ETag"].strip('"')
    s3.put_object(Bucket=bucket, Key=key, Body=b"thirty bytes of newer content\n")
    uri = f"s3://{bucket}/{key}"

    # When a job is submitted for the first content
    body = {"job_type": "word-count", "parameters": {"input": uri}, "inputs": [{"uri": uri, "etag": etag}]}
    status, job = local.request("POST", "/jobs", body)
    assert status == 202, job

    # Then its worker reads nothing else: the attempt ends as INPUT_CHANGED, the job is not retried,
    # and its history says which input changed and what it was made for
    done = local.finished(job["job_id"])
    assert done["status"] == "FAILED"
    [attempt] = done["attempts"]
    assert (attempt["failure_class"], attempt["exit_code"]) == ("INPUT_CHANGED", 66)
    assert done["history"][-1]["reason"].endswith(
        f'input {uri} is no longer what the job was made for (ETag "{etag}"); a changed input is not retried'
    )
    assert [a for a in done["artifacts"] if a["role"] == "output"] == []


def test_memory_hungry_job_is_oom_killed_then_retried_with_more_memory_and_succeeds(local: Local) -> None:
    uri = put_input(local, "incoming/local/manual/unsorted.txt", b"pear\napple\nfig\n")

    status, job = local.request("POST", "/jobs", {"job_type": "sort-large", "parameters": {"input": uri}})
    assert status == 202, job

    done = local.finished(job["job_id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done["history"]
    first, second = done["attempts"]
    assert (first["failure_class"], first["exit_code"], first["memory_mib"]) == ("OUT_OF_MEMORY", 137, 256)
    assert first["status_reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert second["memory_mib"] == 512
    [output] = [a for a in done["artifacts"] if a["role"] == "output"]
    assert read_output(local, output["uri"]) == b"apple\nfig\npear\n"


def test_cancel_of_a_running_job_kills_its_process_and_ends_cancelled(local: Local) -> None:
    # Given a long checksum job (a large input in small chunks) that is RUNNING
    uri = put_input(local, "incoming/local/manual/large.bin", b"\0" * (96 * 1024 * 1024))
    status, job = local.request(
        "POST", "/jobs", {"job_type": "checksum-manifest", "parameters": {"input": uri, "chunk_mib": "1"}}
    )
    assert status == 202, job
    eventually(lambda: local.job(job["job_id"])["status"] == "RUNNING", what="the job to run", every=0.05)

    # When it is cancelled
    status, cancelled = local.request("POST", f"/jobs/{job['job_id']}/cancel")

    # Then it is CANCELLED at once, its process is gone, and its attempt records the cancel
    assert status == 200, cancelled
    assert cancelled["status"] == "CANCELLED"
    done = eventually(
        lambda: (j := local.job(job["job_id"]))["attempts"][0]["status"] == "FAILED" and j,
        what="the attempt to end",
    )
    assert done["status"] == "CANCELLED"
    assert done["attempts"][0]["failure_class"] == "CANCELLED"
    assert (
        subprocess.run(["pgrep", "-f", "workers.checksum_manifest"], capture_output=True, check=False).stdout
        == b""
    )


def test_spot_interruption_falls_back_to_on_demand_and_succeeds(spot_chaos: Local) -> None:
    # Given every Spot attempt is interrupted, and sort-large falls back after one interruption
    uri = put_input(spot_chaos, "incoming/local/manual/small.txt", b"b\na\n")

    status, job = spot_chaos.request(
        "POST", "/jobs", {"job_type": "sort-large", "parameters": {"input": uri}, "memory_mib": 1024}
    )
    assert status == 202, job

    done = spot_chaos.finished(job["job_id"], timeout=120)
    assert done["status"] == "SUCCEEDED", done["history"]
    first, second = done["attempts"]
    assert (first["capacity"], first["failure_class"]) == ("SPOT", "SPOT_INTERRUPTED")
    assert first["status_reason"].startswith("Host EC2 (instance i-")
    assert (second["capacity"], second["status"]) == ("ON_DEMAND", "SUCCEEDED")
    assert "fell_back" in [h["event"] for h in done["history"]]


def test_a_job_that_fails_for_good_is_alerted_and_published_once_from_the_outbox(local: Local) -> None:
    # Given a queue on the alert topic and one on the job event bus, as an operator or a program has
    sqs = local.client("sqs")
    alerts, job_events = watch_queues(
        local, topic_arn=local.info["alert_topic_arn"], bus=local.info["event_bus_name"], name="e2e"
    )

    # When a word-count job reads an input that does not exist (its worker exits 1: not retried)
    missing = f"s3://{local.info['ingest_bucket']}/incoming/local/manual/no such file.txt"
    status, job = local.request("POST", "/jobs", {"job_type": "word-count", "parameters": {"input": missing}})
    assert status == 202, job
    assert local.finished(job["job_id"])["status"] == "FAILED"

    # Then the table's stream brings its decision to the outbox function, which alerts once and
    # publishes "Job Failed" once, both under the decision's event ids
    def received(url: str) -> list[dict]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
        return [b for b in bodies if job["job_id"] in (b.get("Message") or json.dumps(b.get("detail")))]

    [alert] = eventually(lambda: received(alerts), what="the job's alert")
    event_id = alert["MessageAttributes"]["event_id"]["Value"]
    assert event_id.startswith(f"{job['job_id']}:") and event_id.endswith(":alert")
    failed = eventually(
        lambda: [e for e in received(job_events) if e["detail-type"] == "Job Failed"], what="Job Failed"
    )
    assert [e["detail"]["event_id"] for e in failed] == [event_id.removesuffix(":alert") + ":job_event"]
    assert received(alerts) == []


def test_files_dropped_together_run_as_one_array_job_each_child_its_own_file(local: Local) -> None:
    # Given three files dropped at once under checksum-manifest's prefix (its policy coalesces drops)
    bodies = {f"part {n}.bin": bytes([n]) * (1000 + n) for n in range(3)}
    uris = {
        put_input(local, f"incoming/local/checksum/array/{name}", body): body for name, body in bodies.items()
    }

    # When their wait is over and the coalescer submits them
    def their_jobs() -> list[dict] | None:
        status, page = local.request("GET", "/jobs?job_type=checksum-manifest")
        assert status == 200
        found = [j for j in page["jobs"] if j["parameters"]["input"] in uris]
        return found if len(found) == len(uris) else None

    jobs = eventually(their_jobs, what="the dropped files' jobs")
    done = [local.finished(job["job_id"], timeout=180) for job in jobs]

    # Then one Batch array job ran them: each job's attempt is a child at its own index, and each
    # child read its own file (the manifest's line), not the first child's
    assert [d["status"] for d in done] == ["SUCCEEDED"] * 3, [d["history"] for d in done]
    attempts = [d["attempts"][0] for d in done]
    assert len({a["array_name"] for a in attempts}) == 1
    assert sorted(a["array_index"] for a in attempts) == [0, 1, 2]
    for job in done:
        [output] = [a for a in job["artifacts"] if a["role"] == "output"]
        manifest = json.loads(read_output(local, output["uri"]))
        assert manifest["input"] == job["parameters"]["input"]
        assert manifest["size"] == len(uris[job["parameters"]["input"]])
