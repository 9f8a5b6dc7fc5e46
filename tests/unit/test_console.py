"""The console's server (its pages, the /api proxy, SigV4 for a deployed API, what it refuses) and the
CLI's operator options (`list`/`watch` with --all-tenants and --tenant), against a stub HTTP API."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchplane_tools.cli.client import SigV4Signer
from batchplane_tools.console import command
from batchplane_tools.console.server import ConsoleServer, Upstream, static_files
from tests.unit import test_cli
from tests.unit.test_cli import Stub, cli, job, local_file, parse

stub = test_cli.stub  # the stub API server fixture, shared with the CLI's tests


def fetch(url: str, method: str = "GET", host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


@pytest.fixture
def console(stub: Stub) -> Iterator[ConsoleServer]:
    server = ConsoleServer("127.0.0.1", 0, Upstream(stub.url))
    yield server
    server.stop()


def test_the_console_serves_its_packaged_pages_and_nothing_else(console: ConsoleServer) -> None:
    # When the page, its script and its stylesheet are asked for, and things that are not its files
    page = fetch(console.url)
    script = fetch(console.url + "static/console.js")
    style = fetch(console.url + "static/console.css")

    # Then each comes with its type, never cached, under a policy that runs only its own script
    assert (page[0], page[1]["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert b'src="/static/console.js"' in page[2]
    assert (script[0], script[1]["Content-Type"]) == (200, "text/javascript; charset=utf-8")
    assert style[0] == 200
    assert page[1]["Cache-Control"] == "no-store"
    assert "default-src 'self'" in page[1]["Content-Security-Policy"]
    assert set(static_files()) == {"index.html", "console.css", "console.js"}
    for path in ("static/server.py", "static/../server.py", "static/%2e%2e/server.py", "server.py"):
        assert fetch(console.url + path)[0] == 404, path


def test_the_console_proxies_reads_to_the_local_api_as_its_default_caller(
    stub: Stub, console: ConsoleServer
) -> None:
    # Given the API answers a listing, and refuses another
    stub.reply("GET", "/jobs?all_tenants=true&limit=100", 200, {"jobs": [job("01A")], "next_token": None})
    error = {"error": {"code": "forbidden", "message": "no", "details": [{"field": "tenant", "reason": "x"}]}}
    stub.reply("GET", "/jobs?tenant=other", 403, error)

    # When the browser reads both through /api
    status, headers, body = fetch(console.url + "api/jobs?all_tenants=true&limit=100")
    refused = fetch(console.url + "api/jobs?tenant=other")

    # Then each goes to the API's route with its query, unsigned and with no tenant (the local caller),
    # and the answer comes back as the API gave it
    assert (status, json.loads(body)["jobs"][0]["job_id"]) == (200, "01A")
    assert headers["Content-Type"] == "application/json"
    assert (refused[0], json.loads(refused[2])) == (403, error)
    assert [r.path for r in stub.requests] == ["/jobs?all_tenants=true&limit=100", "/jobs?tenant=other"]
    assert all("Authorization" not in r.headers for r in stub.requests)


def test_the_console_signs_each_read_of_a_deployed_api_with_sigv4(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the user's credentials and a deployed API with a stage
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    stub.reply("GET", "/v1/summary?all_tenants=true", 200, {"jobs": 0})
    server = ConsoleServer("127.0.0.1", 0, Upstream(f"{stub.url}/v1", SigV4Signer("eu-west-1")))
    try:
        # When the browser reads the summary (holding no credentials)
        status, _, body = fetch(server.url + "api/summary?all_tenants=true")
        about = json.loads(fetch(server.url + "console.json")[2])
    finally:
        server.stop()

    # Then the console signed it for execute-api in that region, query included
    assert (status, json.loads(body)) == (200, {"jobs": 0})
    [request] = stub.requests
    assert request.path == "/v1/summary?all_tenants=true"
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert about == {"mode": "deployed", "api": f"{stub.url}/v1"}


def test_the_console_only_reads_and_only_answers_to_its_own_address(
    stub: Stub, console: ConsoleServer
) -> None:
    # When another site's page posts through it, or a rebound DNS name reads through it
    posted = fetch(console.url + "api/jobs/01A/cancel", method="POST")
    rebound = fetch(console.url + "api/jobs", host="attacker.example:80")

    # Then neither reaches the API
    assert (posted[0], rebound[0]) == (405, 421)
    assert stub.requests == []


def test_an_unreachable_api_is_a_502_in_the_apis_error_shape(tmp_path: Path) -> None:
    server = ConsoleServer("127.0.0.1", 0, Upstream("http://127.0.0.1:9", timeout=2))
    try:
        status, _, body = fetch(server.url + "api/jobs")
    finally:
        server.stop()
    assert status == 502
    assert json.loads(body)["error"]["code"] == "unreachable"


def test_console_command_signs_for_the_urls_region_and_needs_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no credentials anywhere
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = "https://abc123.execute-api.eu-central-1.amazonaws.com/v1"

    # When the console is started for a deployed API
    code = command.run(parse("console", "--api", url, "--port", "0"), stopping=_stopped())

    # Then it stops before serving, saying why
    assert code == 2
    assert "no AWS credentials" in capsys.readouterr().err

    # And with credentials, it signs for the URL's region
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    upstream = command.upstream_of(parse("console", "--api", url))
    assert isinstance(upstream.signer, SigV4Signer)
    assert (upstream.signer.region, upstream.mode) == ("eu-central-1", "deployed")


def test_console_command_without_api_reads_the_local_stack(stub: Stub, tmp_path: Path) -> None:
    upstream = command.upstream_of(parse("console", "--local-file", str(local_file(tmp_path, stub.url))))
    assert (upstream.base_url, upstream.signer, upstream.mode) == (stub.url, None, "local")


def _stopped() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


# --- list and watch across tenants --------------------------------------------------------------------


def test_list_all_tenants_asks_for_every_tenant_and_shows_each_jobs_tenant(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given unfinished jobs of two tenants
    stub.reply(
        "GET",
        "/jobs?all_tenants=true",
        200,
        {
            "jobs": [job("01A", "RUNNING", tenant="analytics"), job("01B", tenant="research")],
            "next_token": None,
        },
    )

    # When the local operator lists every tenant's jobs
    code = cli("list", "--all-tenants", "--local-file", str(local_file(tmp_path, stub.url)))

    # Then the table has each job's tenant after its id
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["JOB", "ID", "TENANT", "TYPE"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["01A", "analytics", "word-count"],
        ["01B", "research", "word-count"],
    ]


def test_list_and_watch_of_one_tenant_ask_for_it(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply(
        "GET", "/jobs?tenant=research", 200, {"jobs": [job("01B", tenant="research")], "next_token": None}
    )
    stub.reply(
        "GET",
        "/jobs?limit=50&all_tenants=true",
        200,
        {"jobs": [job("01B", tenant="research")], "next_token": None},
    )
    path = str(local_file(tmp_path, stub.url))

    assert cli("list", "--tenant", "research", "--local-file", path) == 0
    assert cli("watch", "--once", "--all-tenants", "--local-file", path) == 0

    out = capsys.readouterr().out
    assert [r.path for r in stub.requests] == ["/jobs?tenant=research", "/jobs?limit=50&all_tenants=true"]
    assert "all tenants, unfinished jobs" in out
    assert any(line.split()[:2] == ["01B", "research"] for line in out.splitlines())


def test_all_tenants_and_tenant_exclude_each_other(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(local_file(tmp_path, stub.url))
    assert cli("list", "--all-tenants", "--tenant", "x", "--local-file", path) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert stub.requests == []
