"""The `batchplane` API commands against a stub HTTP server: what they send, print and exit with."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchplane.models.job import TERMINAL_STATUSES, JobStatus
from batchplane_tools.cli import commands, statuses, watch
from batchplane_tools.cli.arguments import build_parser
from batchplane_tools.cli.client import ApiClient
from batchplane_tools.cli.errors import ApiError, Unreachable
from batchplane_tools.cli.targets import region_of
from tests.support import closed_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stub:
    """An HTTP server on loopback that records each request and answers from canned replies."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    replies: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)

    def reply(self, method: str, path: str, status: int, body: Any) -> None:
        """Answer `method path` (with its query string) with `body`; replies to one path are used in turn."""
        self.replies.setdefault((method, path), []).append((status, body))

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.replies.get((method, path))
        if not queue:
            return 404, {
                "error": {"code": "not_found", "message": f"no stub for {method} {path}", "details": []}
            }
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(Request(self.command, self.path, dict(self.headers.items()), body))
            status, doc = state.answer(self.command, self.path)
            raw = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No API URL or local file from the environment; the default local file is looked for in tmp."""
    monkeypatch.delenv("BATCHPLANE_API_URL", raising=False)
    monkeypatch.delenv("BATCHPLANE_LOCAL_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


def local_file(tmp_path: Path, api_url: str, **extra: Any) -> Path:
    path = tmp_path / "batchplane-local.json"
    doc = {"api_url": api_url, "region": "us-east-1", "tenant": "local", "ingest_bucket": "ingest", **extra}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def cli(*argv: str) -> int:
    return commands.run(parse(*argv))


def job(job_id: str = "01JOB", status: str = "QUEUED", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "job_id": job_id,
        "tenant": "local",
        "job_type": "word-count",
        "status": status,
        "parameters": {"input": "s3://ingest/incoming/local/word-count/notes.txt"},
        "vcpus": 1,
        "memory_mib": 512,
        "inputs": ["s3://ingest/incoming/local/word-count/notes.txt"],
        "output_prefix": f"s3://artifacts/outputs/local/{job_id}/",
        "created_at": "2025-11-28T12:00:00.123456Z",
        "updated_at": "2025-11-28T12:00:05Z",
        "attempts": [],
        "history": [{"at": "2025-11-28T12:00:00Z", "event": "QUEUED", "reason": "submitted by api"}],
        "artifacts": [],
    }
    return base | fields


def attempt(number: int, capacity: str, status: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "number": number,
        "batch_job_id": f"batch-{number}",
        "queue": "spot" if capacity == "SPOT" else "on-demand",
        "capacity": capacity,
        "vcpus": 1,
        "memory_mib": 512,
        "status": status,
        "status_reason": None,
        "exit_code": None,
        "failure_class": None,
        "log_stream": None,
        "submitted_at": "2025-11-28T12:00:01Z",
        "started_at": None,
        "stopped_at": None,
    }
    return base | fields


# --- submit -------------------------------------------------------------------------------------------


def test_the_cli_knows_the_api_s_statuses_without_importing_the_models() -> None:
    # The CLI keeps its own copy (importing the models would load pydantic, ~110 ms a command):
    # it must be the domain's, in the domain's order.
    assert tuple(JobStatus) == statuses.STATUSES
    assert statuses.TERMINAL == TERMINAL_STATUSES


def test_submit_sends_the_body_tenant_and_idempotency_key_and_prints_the_id(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local stack file pointing at the stub, which accepts the job
    path = local_file(tmp_path, stub.url)
    stub.reply("POST", "/jobs", 202, job("01ABC"))

    # When a job is submitted with parameters, resources, a priority and an idempotency key
    code = cli(
        "submit",
        "word-count",
        "-p",
        "input=s3://ingest/incoming/local/word-count/notes.txt",
        "-p",
        "mode=a=b",
        "--vcpus",
        "2",
        "--memory-mib",
        "1024",
        "--priority",
        "70",
        "--idempotency-key",
        "key-1",
        "--local-file",
        str(path),
    )

    # Then the API got the JSON body and headers, and the id and status are printed
    assert code == 0
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/jobs")
    assert request.json() == {
        "job_type": "word-count",
        "parameters": {"input": "s3://ingest/incoming/local/word-count/notes.txt", "mode": "a=b"},
        "vcpus": 2,
        "memory_mib": 1024,
        "priority": 70,
    }
    assert request.headers["Authorization"] == "Tenant local"
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert capsys.readouterr().out == "01ABC  QUEUED\n"


def test_submit_leaves_out_what_was_not_given_and_takes_the_tenant_option(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local file named by the environment
    monkeypatch.setenv("BATCHPLANE_LOCAL_FILE", str(local_file(tmp_path, stub.url)))
    stub.reply("POST", "/jobs", 202, job())

    # When a job is submitted as another tenant, without resources or key
    assert cli("submit", "word-count", "--tenant", "acme") == 0

    # Then the body has no resources and no key header is sent
    [request] = stub.requests
    assert request.json() == {"job_type": "word-count", "parameters": {}}
    assert "Idempotency-Key" not in request.headers
    assert request.headers["Authorization"] == "Tenant acme"


def test_submit_hold_asks_to_be_held_over_the_limit_and_prints_held(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a tenant over its limit: the API holds the job
    stub.reply(
        "POST", "/jobs", 202, job("01HELD", "HELD", held_reason="in-flight limit 500 of word-count reached")
    )

    # When a job is submitted with --hold
    code = cli("submit", "word-count", "--hold", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then the body asks to be held, and the held job is printed
    [request] = stub.requests
    assert request.json() == {"job_type": "word-count", "parameters": {}, "when_over_limit": "hold"}
    assert (code, capsys.readouterr().out) == (0, "01HELD  HELD\n")


def test_submit_wait_polls_until_terminal_and_exits_by_the_outcome(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job that runs, then fails
    path = str(local_file(tmp_path, stub.url))
    stub.reply("POST", "/jobs", 202, job("01W"))
    stub.reply("GET", "/jobs/01W", 200, job("01W", "RUNNING"))
    stub.reply("GET", "/jobs/01W", 200, job("01W", "FAILED"))

    # When it is submitted with --wait
    code = cli("submit", "word-count", "--wait", "--interval", "0.01", "--local-file", path)

    # Then each change is told, the final summary printed, and the exit status is 1
    assert code == 1
    captured = capsys.readouterr()
    assert "01W  RUNNING" in captured.err
    assert "01W  FAILED" in captured.err
    assert "status      FAILED" in captured.out
    assert [r.path for r in stub.requests] == ["/jobs", "/jobs/01W", "/jobs/01W"]


def test_a_bad_parameter_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse("submit", "word-count", "-p", "no-equals-sign")

    assert exit_info.value.code == 2


# --- get ----------------------------------------------------------------------------------------------


def test_get_prints_attempts_history_and_artifacts(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job that ran out of memory on Spot, then succeeded with more memory
    stub.reply(
        "GET",
        "/jobs/01XYZ",
        200,
        job(
            "01XYZ",
            "SUCCEEDED",
            job_type="sort-large",
            attempts=[
                attempt(
                    1,
                    "SPOT",
                    "FAILED",
                    memory_mib=256,
                    exit_code=137,
                    failure_class="OUT_OF_MEMORY",
                    status_reason="OutOfMemoryError: Container killed due to memory usage",
                ),
                attempt(2, "ON_DEMAND", "SUCCEEDED", memory_mib=512, exit_code=0),
            ],
            history=[
                {"at": "2025-11-28T12:00:00Z", "event": "QUEUED", "reason": "submitted by api"},
                {
                    "at": "2025-11-28T12:01:00Z",
                    "event": "RETRY",
                    "reason": "OUT_OF_MEMORY: memory 256 -> 512",
                },
            ],
            artifacts=[
                {
                    "uri": "s3://ingest/incoming/local/sort/big.csv",
                    "size": 48213,
                    "etag": "e1",
                    "role": "input",
                },
                {
                    "uri": "s3://artifacts/outputs/local/01XYZ/sorted.csv",
                    "size": 512,
                    "etag": "e2",
                    "role": "output",
                },
            ],
        ),
    )

    # When it is shown
    code = cli("get", "01XYZ", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then the summary holds its fields, both attempts, its history and its artifacts
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "status      SUCCEEDED" in lines
    assert "type        sort-large" in lines
    assert "tenant      local" in lines
    assert "created     2025-11-28T12:00:00Z" in lines
    [first] = [line for line in lines if line.lstrip().startswith("1  SPOT")]
    assert first.split()[:7] == ["1", "SPOT", "256", "MiB", "FAILED", "OUT_OF_MEMORY", "137"]
    assert first.endswith("OutOfMemoryError: Container killed due to memory usage")
    [second] = [line for line in lines if line.lstrip().startswith("2  ON_DEMAND")]
    assert "512 MiB" in second
    assert "SUCCEEDED" in second
    assert any("RETRY" in line and "OUT_OF_MEMORY: memory 256 -> 512" in line for line in lines)
    assert any(
        line.split() == ["input", "s3://ingest/incoming/local/sort/big.csv", "47.1", "KiB"] for line in lines
    )
    assert any(
        line.split()[:2] == ["output", "s3://artifacts/outputs/local/01XYZ/sorted.csv"] for line in lines
    )
    assert stub.requests[0].headers["Authorization"] == "Tenant local"


def test_get_shows_the_array_place_of_an_attempt_that_ran_as_a_child(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a coalesced job whose first attempt ran as child 7 of an array, its retry alone
    array = "bp-array-5c0e8f1a2b3d4c6e7f809a1b"
    child = attempt(1, "SPOT", "FAILED", batch_job_id="p:7", array_name=array, array_index=7)
    stub.reply(
        "GET",
        "/jobs/01ARR",
        200,
        job("01ARR", "RUNNING", attempts=[child, attempt(2, "ON_DEMAND", "RUNNING")]),
    )

    # When it is shown
    code = cli("get", "01ARR", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then the child's line names its array and index; the single job's has none
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    [first] = [line for line in lines if line.lstrip().startswith("1  SPOT")]
    [second] = [line for line in lines if line.lstrip().startswith("2  ON_DEMAND")]
    assert f"{array}:7" in first.split()
    assert array not in second


def test_get_of_a_waiting_job_says_why_it_waits_and_its_place(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job waiting in RUNNABLE, third in its queue, and one not among the first 100
    reason = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement is too large"
    waits = {"status": "RUNNABLE", "reason": reason, "since": "2025-11-28T12:00:00Z"}
    third = {
        **waits,
        "position": 3,
        "position_note": "among the first 100 RUNNABLE jobs of its queue",
        "position_as_of": "2025-11-28T12:05:00Z",
    }
    far = {
        **waits,
        "reason": None,
        "position": None,
        "position_note": "not in the first 100",
        "position_as_of": None,
    }
    stub.reply("GET", "/jobs/01W", 200, {**job("01W", "RUNNABLE"), "waiting": third})
    stub.reply("GET", "/jobs/01F", 200, {**job("01F", "RUNNABLE"), "waiting": far})
    file = str(local_file(tmp_path, stub.url))

    # When each is shown
    assert cli("get", "01W", "--local-file", file) == 0
    third_lines = capsys.readouterr().out.splitlines()
    assert cli("get", "01F", "--local-file", file) == 0
    far_lines = capsys.readouterr().out.splitlines()

    # Then the summary says since when and why it waits, and where it is in line when Batch says
    assert f"waiting     RUNNABLE since 2025-11-28T12:00:00Z: {reason}" in third_lines
    place = "3 in its queue (as of 2025-11-28T12:05:00Z; among the first 100 RUNNABLE jobs of its queue)"
    assert f"position    {place}" in third_lines
    assert "waiting     RUNNABLE since 2025-11-28T12:00:00Z: Batch gave no reason" in far_lines
    assert "position    not in the first 100" in far_lines


def test_get_json_prints_the_api_answer(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply("GET", "/jobs/01J", 200, job("01J"))

    assert cli("get", "01J", "--json", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    assert json.loads(capsys.readouterr().out) == job("01J")


# --- list ---------------------------------------------------------------------------------------------


def test_list_all_follows_next_token(stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given two pages of jobs, the second one after a token that needs encoding
    stub.reply(
        "GET",
        "/jobs?status=RUNNING&limit=2",
        200,
        {"jobs": [job("01A", "RUNNING"), job("01B", "RUNNING")], "next_token": "abc/+="},
    )
    stub.reply(
        "GET",
        "/jobs?status=RUNNING&limit=2&next_token=abc%2F%2B%3D",
        200,
        {
            "jobs": [job("01C", "RUNNING", attempts=[attempt(1, "SPOT", "RUNNING")])],
            "next_token": None,
        },
    )

    # When all pages are listed
    code = cli(
        "list",
        "--status",
        "running",
        "--limit",
        "2",
        "--all",
        "--local-file",
        str(local_file(tmp_path, stub.url)),
    )

    # Then both pages were asked for and every job is in the table
    assert code == 0
    assert [r.path for r in stub.requests] == [
        "/jobs?status=RUNNING&limit=2",
        "/jobs?status=RUNNING&limit=2&next_token=abc%2F%2B%3D",
    ]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "ID", "TYPE", "STATUS", "ATTEMPTS", "CAPACITY", "UPDATED"]
    assert [line.split()[0] for line in lines[1:]] == ["01A", "01B", "01C"]
    assert lines[3].split() == ["01C", "word-count", "RUNNING", "1", "SPOT", "2025-11-28T12:00:05Z"]
    # the columns are aligned
    assert len({line.index("word-count") for line in lines[1:]}) == 1


def test_list_without_all_tells_of_more_pages(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply("GET", "/jobs", 200, {"jobs": [job("01A")], "next_token": "tok"})

    assert cli("list", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    captured = capsys.readouterr()
    assert "01A" in captured.out
    assert "--next-token tok" in captured.err
    assert len(stub.requests) == 1


# --- cancel and retry ---------------------------------------------------------------------------------


def test_cancel_and_retry_post_to_their_routes(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(local_file(tmp_path, stub.url))
    stub.reply("POST", "/jobs/01A/cancel", 200, job("01A", "CANCELLED"))
    stub.reply("POST", "/jobs/01A/retry", 202, job("01A", "QUEUED"))

    assert cli("cancel", "01A", "--local-file", path) == 0
    assert cli("retry", "01A", "--local-file", path) == 0

    assert [(r.method, r.path) for r in stub.requests] == [
        ("POST", "/jobs/01A/cancel"),
        ("POST", "/jobs/01A/retry"),
    ]
    assert capsys.readouterr().out == "01A  CANCELLED\n01A  QUEUED\n"


# --- errors -------------------------------------------------------------------------------------------


def test_an_api_error_exits_1_with_one_line(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an API that does not know the job
    stub.reply(
        "GET",
        "/jobs/x",
        404,
        {
            "error": {
                "code": "not_found",
                "message": "job x not found",
                "details": [{"field": "job_id", "reason": "no such job"}],
            }
        },
    )

    # When it is asked for
    code = cli("get", "x", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then one line tells the status, code, message and details
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "batchplane: 404 not_found: job x not found (job_id: no such job)\n"


def test_a_conflict_without_details_is_one_line_too(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply(
        "POST",
        "/jobs/01A/cancel",
        409,
        {"error": {"code": "conflict", "message": "job 01A is SUCCEEDED", "details": []}},
    )

    assert cli("cancel", "01A", "--local-file", str(local_file(tmp_path, stub.url))) == 1

    assert capsys.readouterr().err == "batchplane: 409 conflict: job 01A is SUCCEEDED\n"


def test_an_unreachable_api_exits_2_with_a_helpful_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a local file naming a port nobody listens on
    url = f"http://127.0.0.1:{closed_port()}"

    # When the jobs are listed
    code = cli("list", "--local-file", str(local_file(tmp_path, url)))

    # Then one line says where, why, and what to do
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"batchplane: cannot reach the API at {url} (connection refused). "
        "Is `make local` running? (or pass --url)\n"
    )


def test_no_local_file_exits_2_with_a_helpful_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Given no --url and no local stack file in the current directory
    # When a job is asked for
    code = cli("get", "01A")

    # Then the missing file is named, with the hint
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "batchplane-local.json" in err
    assert "Is `make local` running? (or pass --url)" in err


def test_client_raises_typed_errors(stub: Stub) -> None:
    stub.reply("GET", "/jobs/x", 429, {"message": "Too Many Requests"})  # API Gateway's own shape

    with pytest.raises(ApiError) as api_error:
        ApiClient(stub.url).get("x")
    with pytest.raises(Unreachable) as unreachable:
        ApiClient(f"http://127.0.0.1:{closed_port()}", timeout=2).get("x")

    assert (api_error.value.status, api_error.value.code) == (429, "too_many_requests")
    assert str(api_error.value) == "429 too_many_requests: Too Many Requests"
    assert unreachable.value.why == "connection refused"


# --- SigV4 --------------------------------------------------------------------------------------------


def test_url_signs_requests_with_sigv4_and_sends_no_tenant(
    stub: Stub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given fake AWS credentials and a deployed-style URL with a stage
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "fake-token")
    stub.reply("POST", "/v1/jobs", 202, job("01S"))

    # When a job is submitted with --url (and --tenant, which only the local stack takes)
    code = cli(
        "submit",
        "word-count",
        "-p",
        "x=1",
        "--url",
        f"{stub.url}/v1",
        "--region",
        "eu-west-1",
        "--tenant",
        "t",
    )

    # Then the request is signed for execute-api in that region
    assert code == 0
    [request] = stub.requests
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=" in authorization
    assert "host" in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert request.headers["X-Amz-Date"].endswith("Z")
    assert request.headers["X-Amz-Security-Token"] == "fake-token"
    assert "Tenant" not in authorization
    assert capsys.readouterr().out == "01S  QUEUED\n"


def test_url_from_the_environment_takes_its_region_from_the_url(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHPLANE_API_URL", f"{stub.url}/v1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    stub.reply("GET", "/v1/jobs/01A", 200, job("01A"))

    assert cli("get", "01A") == 0

    assert "/ap-southeast-2/execute-api/" in stub.requests[0].headers["Authorization"]
    assert region_of("https://abc123.execute-api.eu-central-1.amazonaws.com/v1") == "eu-central-1"
    assert region_of("http://127.0.0.1:8080") is None


# --- drop ---------------------------------------------------------------------------------------------


def test_drop_uploads_to_the_ingest_bucket_with_a_unicode_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack's ingest bucket (on moto) and a file with a non-ASCII name
    source = tmp_path / "red flowerÉ notes.txt"
    source.write_text("one two three\n", encoding="utf-8")
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="my-ingest")

        # When the file is dropped under the word-count prefix
        code = cli(
            "drop",
            str(source),
            "--url",
            url,
            "--bucket",
            "my-ingest",
            "--prefix",
            "incoming/analytics/word-count",
        )

        # Then the object is there under prefix + file name, and its URI printed
        key = "incoming/analytics/word-count/red flowerÉ notes.txt"
        assert code == 0
        assert s3.get_object(Bucket="my-ingest", Key=key)["Body"].read() == b"one two three\n"
    assert capsys.readouterr().out == f"s3://my-ingest/{key}\n"


def test_drop_with_url_needs_a_bucket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "a.txt"
    source.write_text("a", encoding="utf-8")

    assert cli("drop", str(source), "--url", "https://abc.execute-api.us-east-1.amazonaws.com/v1") == 2

    assert "--bucket" in capsys.readouterr().err


def test_drop_to_the_local_stack_uses_its_endpoint_and_dummy_credentials(
    moto_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack's embedded AWS, and no AWS credentials at all
    endpoint = moto_server
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    s3.create_bucket(Bucket="batchplane-local-ingest")
    path = local_file(
        tmp_path, "http://127.0.0.1:1", aws_endpoint_url=endpoint, ingest_bucket="batchplane-local-ingest"
    )
    source = tmp_path / "Überblick.txt"
    source.write_text("hallo\n", encoding="utf-8")

    # When a file is dropped with an explicit key
    code = cli("drop", str(source), "--key", "incoming/local/word-count/ärger.txt", "--local-file", str(path))

    # Then it is in the local ingest bucket
    assert code == 0
    body = s3.get_object(Bucket="batchplane-local-ingest", Key="incoming/local/word-count/ärger.txt")[
        "Body"
    ].read()
    assert body == b"hallo\n"
    assert capsys.readouterr().out == "s3://batchplane-local-ingest/incoming/local/word-count/ärger.txt\n"


@pytest.mark.parametrize(
    ("tenant", "prefix"), [([], "incoming/local/"), (["--tenant", "finance"], "incoming/finance/")]
)
def test_drop_goes_under_the_tenants_own_prefix_by_default(
    moto_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tenant: list[str],
    prefix: str,
) -> None:
    # Given the local stack's ingest bucket
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    s3.create_bucket(Bucket="batchplane-local-ingest")
    path = local_file(
        tmp_path, "http://127.0.0.1:1", aws_endpoint_url=moto_server, ingest_bucket="batchplane-local-ingest"
    )
    source = tmp_path / "notes.txt"
    source.write_text("a b\n", encoding="utf-8")

    # When a file is dropped with neither --key nor --prefix
    assert cli("drop", str(source), "--local-file", str(path), *tenant) == 0

    # Then it lands under the tenant's word-count prefix, where the file-drop rule makes it that tenant's job
    key = f"{prefix}word-count/notes.txt"
    assert s3.get_object(Bucket="batchplane-local-ingest", Key=key)["Body"].read() == b"a b\n"
    assert capsys.readouterr().out == f"s3://batchplane-local-ingest/{key}\n"


def test_drop_to_a_deployed_stack_must_be_told_whose_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.txt"
    source.write_text("a", encoding="utf-8")
    url = "https://abc.execute-api.us-east-1.amazonaws.com/v1"

    with mock_aws():
        assert cli("drop", str(source), "--url", url, "--bucket", "my-ingest") == 2

    assert "--tenant" in capsys.readouterr().err


# --- watch --------------------------------------------------------------------------------------------


def test_watch_once_prints_one_table(stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a running job and a finished one
    running = job(
        "01R",
        "RUNNING",
        job_type="sort-large",
        attempts=[attempt(1, "SPOT", "FAILED"), attempt(2, "ON_DEMAND", "RUNNING", memory_mib=1024)],
        history=[{"at": "2025-11-28T12:00:00Z", "event": "RETRY", "reason": "spot reclaimed"}],
    )
    stub.reply("GET", "/jobs?limit=50", 200, {"jobs": [running, job("01D", "SUCCEEDED")], "next_token": None})

    # When one frame is asked for
    code = cli("watch", "--once", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then a plain table (no ANSI codes) of both jobs is printed
    assert code == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"batchplane watch  {stub.url}  tenant local")
    assert "2 jobs" in lines[1]
    assert "RUNNING 1" in lines[1]
    assert "SUCCEEDED 1" in lines[1]
    [header] = [line for line in lines if line.startswith("JOB ID")]
    assert header.split() == [
        "JOB",
        "ID",
        "TYPE",
        "STATUS",
        "ATTEMPTS",
        "CAPACITY",
        "MEMORY",
        "LAST",
        "EVENT",
    ]
    [row] = [line for line in lines if line.startswith("01R")]
    assert row.split() == [
        "01R",
        "sort-large",
        "RUNNING",
        "2",
        "ON_DEMAND",
        "1024",
        "MiB",
        "RETRY:",
        "spot",
        "reclaimed",
    ]
    [done] = [line for line in lines if line.startswith("01D")]
    assert done.split()[:5] == ["01D", "word-count", "SUCCEEDED", "0", "-"]


def test_watch_stops_on_ctrl_c_with_exit_0(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply("GET", "/jobs?limit=50", 200, {"jobs": [job("01A")], "next_token": None})

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(watch.time, "sleep", interrupt)

    assert cli("watch", "--local-file", str(local_file(tmp_path, stub.url))) == 0
    assert "01A" in capsys.readouterr().out


# --- logs -------------------------------------------------------------------------------------------

LOG = "/jobs/01JOB/attempts/{n}/log"


def line(at: str, message: str) -> dict[str, str]:
    return {"at": at, "message": message}


def page(lines: list[dict[str, str]], token: str | None, attempt_number: int = 1) -> dict[str, object]:
    return {
        "job_id": "01JOB",
        "attempt": attempt_number,
        "where": "/aws/batch/job/word-count/default/abc",
        "lines": lines,
        "next_token": token,
    }


def test_logs_prints_the_latest_attempt_that_ran_page_by_page(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job whose second attempt ran (its third has not started), and its log in two pages
    stub.reply(
        "GET",
        "/jobs/01JOB",
        200,
        job(
            status="RUNNING",
            attempts=[
                attempt(1, "SPOT", "FAILED", log_stream="s/1"),
                attempt(2, "ON_DEMAND", "FAILED", log_stream="s/2"),
                attempt(3, "ON_DEMAND", "RUNNABLE"),
            ],
        ),
    )
    stub.reply("GET", LOG.format(n=2), 200, page([line("2025-11-28T12:00:01.250000Z", "reading")], "t1", 2))
    stub.reply(
        "GET",
        LOG.format(n=2) + "?next_token=t1",
        200,
        page([line("2025-11-28T12:00:02.500000Z", "error: input changed")], "t2", 2),
    )
    stub.reply("GET", LOG.format(n=2) + "?next_token=t2", 200, page([], None, 2))

    # When its log is asked for without --attempt
    code = cli("logs", "01JOB", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then attempt 2's lines print in order, each with its time, until the API says it is all
    assert code == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["12:00:01.250  reading", "12:00:02.500  error: input changed"]
    assert "attempt 2: /aws/batch/job/word-count/default/abc" in err


def test_logs_follow_asks_again_until_the_attempt_ends(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a running attempt: caught up (an empty page that keeps its token), then a new line, then its end
    stub.reply("GET", LOG.format(n=1), 200, page([line("2025-11-28T12:00:01.000000Z", "started")], "t1"))
    stub.reply("GET", LOG.format(n=1) + "?next_token=t1", 200, page([], "t1"))
    stub.reply(
        "GET",
        LOG.format(n=1) + "?next_token=t1",
        200,
        page([line("2025-11-28T12:00:09.000000Z", "done")], "t2"),
    )
    stub.reply("GET", LOG.format(n=1) + "?next_token=t2", 200, page([], None))

    # When it is followed
    args = ["logs", "01JOB", "--attempt", "1", "--follow", "--interval", "0.01"]
    code = cli(*args, "--local-file", str(local_file(tmp_path, stub.url)))

    # Then the lines written later come too, and the command ends with the attempt
    assert code == 0
    assert [m.split("  ", 1)[1] for m in capsys.readouterr().out.splitlines()] == ["started", "done"]
    assert [r.path for r in stub.requests] == [
        LOG.format(n=1),
        LOG.format(n=1) + "?next_token=t1",
        LOG.format(n=1) + "?next_token=t1",
        LOG.format(n=1) + "?next_token=t2",
    ]


def test_logs_without_follow_stops_once_caught_up(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply("GET", LOG.format(n=1), 200, page([line("2025-11-28T12:00:01.000000Z", "started")], "t1"))
    stub.reply("GET", LOG.format(n=1) + "?next_token=t1", 200, page([], "t1"))

    assert cli("logs", "01JOB", "--attempt", "1", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    assert len(stub.requests) == 2
    assert capsys.readouterr().out.splitlines() == ["12:00:01.000  started"]


def test_logs_of_a_job_that_has_not_run_says_so(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply("GET", "/jobs/01JOB", 200, job(attempts=[attempt(1, "SPOT", "RUNNABLE")]))

    assert cli("logs", "01JOB", "--local-file", str(local_file(tmp_path, stub.url))) == 2

    assert "has no attempt that ran yet" in capsys.readouterr().err


def test_get_of_a_failed_job_says_where_its_output_is(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = job(
        status="FAILED",
        attempts=[
            attempt(1, "ON_DEMAND", "FAILED", exit_code=1, failure_class="APPLICATION", log_stream="s/1")
        ],
    )
    stub.reply("GET", "/jobs/01JOB", 200, failed)
    stub.reply(
        "GET",
        "/jobs/01OK",
        200,
        job("01OK", "SUCCEEDED", attempts=[attempt(1, "SPOT", "SUCCEEDED", log_stream="s")]),
    )

    assert cli("get", "01JOB", "--local-file", str(local_file(tmp_path, stub.url))) == 0
    assert cli("get", "01OK", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    out = capsys.readouterr().out
    assert "its output: batchplane logs 01JOB --attempt 1" in out
    assert "batchplane logs 01OK" not in out
