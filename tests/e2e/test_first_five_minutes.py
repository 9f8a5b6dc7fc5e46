"""The first five minutes on `batchplane local`, as written: the banner's commands on a fresh stack
(with its aws.env sourced, over a shell configured for another region), a job's output as its
attempt's log, Batch on the one AWS endpoint, and each stack's own files."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.cli.main import try_commands
from batchplane_tools.paths import ROOT
from batchplane_tools.process import spawn_local
from batchplane_tools.state_file import LocalInfo
from tests.e2e.conftest import Local, start_local
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    yield from start_local(tmp_path_factory.mktemp("fresh"), "--workers", "2", "--sweep-interval", "3600")


def sourced(env_file: Path) -> dict[str, str]:
    """What `. aws.env` leaves in a shell that had another region and a profile configured."""
    shell = {
        **os.environ,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "AWS_PROFILE": "work",
    }
    shell = {k: v for k, v in shell.items() if not k.startswith("AWS_ENDPOINT_URL")}
    shell.pop("BATCHPLANE_LOCAL_FILE", None)
    printed = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(env_file))} && env -0"],
        env=shell,
        capture_output=True,
        check=True,
    ).stdout
    return dict(entry.split("=", 1) for entry in printed.decode().split("\0") if "=" in entry)


def batchplane(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/batchplane ARGS` from the checkout's root: this interpreter's batchplane."""
    return subprocess.run(
        [sys.executable, "-m", "batchplane_tools.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # the caller asserts on the exit status, with the output
    )


def aws_cli(env: dict[str, str], command: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The banner's `aws ...` commands as the AWS CLI makes them, with boto3 (the CLI is not
    installed here): endpoint, credentials and region from the environment alone, as the CLI's."""
    import boto3

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    words = shlex.split(command, comments=True)
    session = boto3.session.Session()
    if words[:3] == ["aws", "s3", "ls"]:
        bucket, _, prefix = words[3].removeprefix("s3://").partition("/")
        return [
            o["Key"] for o in session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
        ]
    if words[:3] == ["aws", "s3", "cp"]:
        bucket, _, key = words[4].removeprefix("s3://").partition("/")
        return session.client("s3").upload_file(words[3], bucket, key)
    if words[:3] == ["aws", "batch", "describe-job-queues"]:
        return [q["jobQueueName"] for q in session.client("batch").describe_job_queues()["jobQueues"]]
    if words[:3] == ["aws", "batch", "list-jobs"]:
        queue, status = words[words.index("--job-queue") + 1], words[words.index("--job-status") + 1]
        return session.client("batch").list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
    raise AssertionError(f"the test does not know how to make {command!r}")


def test_every_command_of_the_banner_succeeds_as_written(
    fresh: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fresh stack and its banner's commands, the first of which sources its aws.env
    info = LocalInfo.load(Path(fresh.info["env_file"]).parent.with_suffix(".json"))
    source, *commands = try_commands(info)
    assert source == f". {info.env_file}"
    env = sourced(Path(str(info.env_file)))
    assert (env["AWS_DEFAULT_REGION"], env["AWS_ENDPOINT_URL"]) == ("us-east-1", info.aws_endpoint_url)
    assert "AWS_PROFILE" not in env

    # When each runs in turn, then each succeeds, doing what it says
    outputs: dict[str, Any] = {}
    for command in commands:
        words = shlex.split(command)
        if words[0] == ".venv/bin/batchplane":
            done = batchplane(env, *words[1:])
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            outputs[words[1]] = done.stdout
        elif words[0] == "curl":
            tenant = words[words.index("-H") + 1].removeprefix("Authorization: Tenant ")
            request = urllib.request.Request(words[-1], headers={"Authorization": f"Tenant {tenant}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                outputs["curl"] = json.loads(response.read())
        else:
            outputs[" ".join(words[:3])] = aws_cli(env, command, monkeypatch)
    assert "SUCCEEDED" in outputs["submit"]
    assert outputs["drop"].strip() == f"s3://{info.ingest_bucket}/incoming/local/word-count/readme.txt"
    assert len(outputs["curl"]["jobs"]) >= 1
    assert any(key.endswith("/counts.json") for key in outputs["aws s3 ls"])
    assert sorted(outputs["aws batch describe-job-queues"]) == [
        "batchplane-local-on-demand",
        "batchplane-local-spot",
    ]


def test_batch_answers_on_the_one_aws_endpoint_with_the_emulators_jobs(fresh: Local) -> None:
    # Given a job that ran
    uri = f"s3://{fresh.info['ingest_bucket']}/incoming/local/manual/hamlet.txt"
    status, job = fresh.request("POST", "/jobs", {"job_type": "word-count", "parameters": {"input": uri}})
    assert status == 202, job
    done = fresh.finished(job["job_id"])

    # When a boto3 Batch client asks the stack's one AWS endpoint
    batch = fresh.client("batch")
    queues = batch.describe_job_queues()["jobQueues"]
    [described] = batch.describe_jobs(jobs=[done["attempts"][0]["batch_job_id"]])["jobs"]

    # Then the emulator answers: its queues, and the job it ran
    assert {q["jobQueueName"] for q in queues} == {"batchplane-local-on-demand", "batchplane-local-spot"}
    assert (described["status"], described["jobName"]) == ("SUCCEEDED", f"bp-{job['job_id']}-1")


def test_a_failed_jobs_own_words_are_its_attempts_log(fresh: Local) -> None:
    # Given a job whose worker fails (its input does not exist) after writing to its output
    missing = f"s3://{fresh.info['ingest_bucket']}/incoming/local/manual/no such file.txt"
    status, job = fresh.request("POST", "/jobs", {"job_type": "word-count", "parameters": {"input": missing}})
    assert status == 202, job
    done = fresh.finished(job["job_id"])
    assert done["status"] == "FAILED"

    # When its log is read over REST, and with `batchplane logs`, and the job with `batchplane get`
    status, page = fresh.request("GET", f"/jobs/{job['job_id']}/attempts/1/log")
    env = {
        **os.environ,
        "BATCHPLANE_LOCAL_FILE": str(Path(fresh.info["env_file"]).parent.with_suffix(".json")),
    }
    logs = batchplane(env, "logs", job["job_id"])
    shown = batchplane(env, "get", job["job_id"])

    # Then the worker's own message is there, and `get` says where to find it
    assert status == 200, page
    stream = done["attempts"][0]["log_stream"]
    assert page["where"] == f"/aws/batch/job/{stream}"
    messages = [line["message"] for line in page["lines"]]
    assert any("no such file.txt" in m for m in messages), messages
    assert logs.returncode == 0, logs.stderr
    assert any("no such file.txt" in line for line in logs.stdout.splitlines())
    assert f"batchplane logs {job['job_id']} --attempt 1" in shown.stdout
    # The output file is the stack's own, under its state directory
    assert (Path(fresh.info["jobs_dir"]) / stream).is_file()


def _spawn(state: Path, log: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A stack asked to write `state`; the state file it actually wrote, once ready."""
    with log.open("ab") as out:
        process = spawn_local(state, "--workers", "1", "--sweep-interval", "3600", output=out)
    mine = [state, state.with_name(f"{state.stem}-{process.pid}{state.suffix}")]

    def written() -> Path | None:
        assert process.poll() is None, log.read_text()
        for path in mine:
            if path.exists() and json.loads(path.read_text()).get("pid") == process.pid:
                return path
        return None

    return process, eventually(written, what="the stack's state file")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def test_two_stacks_keep_their_own_files_and_each_removes_only_its_own(tmp_path: Path) -> None:
    # Given two stacks asked for the same state file, the second while the first runs
    state = tmp_path / "batchplane-local.json"
    first, first_file = _spawn(state, tmp_path / "first.log")
    second = None
    try:
        second, second_file = _spawn(state, tmp_path / "second.log")

        # Then the first has the file asked for and the second its own beside it, each with its own directory
        assert first_file == state
        assert second_file == tmp_path / f"batchplane-local-{second.pid}.json"
        first_info, second_info = LocalInfo.load(first_file), LocalInfo.load(second_file)
        assert first_info.api_url != second_info.api_url
        assert Path(str(second_info.jobs_dir)).parent == second_file.with_suffix("")
        assert Path(str(first_info.env_file)).is_file() and Path(str(second_info.env_file)).is_file()

        # When the second stops, then its files are gone and the first's are untouched
        _stop(second)
        second = None
        assert not second_file.exists() and not second_file.with_suffix("").exists()
        assert LocalInfo.load(state).pid == first.pid and Path(str(first_info.env_file)).is_file()
    finally:
        if second is not None:
            _stop(second)
        # When the first stops too, then nothing of either is left
        _stop(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.log", "second.log"]


def _readme_blocks() -> tuple[list[str], list[str]]:
    """The README's "Five minutes" commands: the second terminal's, and the AWS CLI's."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Five minutes with `batchplane local`", 1)[1].split(
        "### `batchplane local` flags", 1
    )[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```bash\n")[1:]]
    lines = [
        [line for line in block.splitlines() if line.strip() and not line.startswith("#")] for block in blocks
    ]
    return lines[0], lines[1]


def test_every_command_of_the_readme_succeeds_as_written(
    fresh: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the README's commands, the first of which sources the stack's aws.env (here the fixture's)
    terminal, aws_block = _readme_blocks()
    assert terminal[0].startswith(". .local/batchplane-local/aws.env")
    env = sourced(Path(fresh.info["env_file"]))
    variables = {"bp": ".venv/bin/batchplane", "bucket": env["BATCHPLANE_INGEST_BUCKET"]}
    job_id = ""

    # When each runs in turn (<job-id>: the job the command before made; `watch` once, not until Ctrl-C)
    for line in terminal[1:]:
        name, equals, value = line.partition("=")
        if equals and " " not in name:
            variables[name] = value.replace("$BATCHPLANE_INGEST_BUCKET", env["BATCHPLANE_INGEST_BUCKET"])
            continue
        command = line.replace("<job-id>", job_id)
        for name, value in variables.items():
            command = command.replace(f"${name}", value)
        if command.startswith("printf "):  # the input file the next commands name
            subprocess.run(["bash", "-c", command], check=True)
            continue
        words = shlex.split(command, comments=True)
        assert words[0] == ".venv/bin/batchplane", line
        words += ["--once"] if words[1] == "watch" else []
        done = batchplane(env, *words[1:])

        # Then each succeeds, but for the one shown to be refused (another tenant's data) and the one
        # shown to fail (a missing input), which fail as the README says
        if "--tenant" in words:
            assert done.returncode == 1 and "parameters.input" in done.stderr, done.stderr
        elif "missing.txt" in line:
            assert done.returncode == 1 and "FAILED" in done.stdout, done.stdout
        else:
            assert done.returncode == 0, (line, done.stdout, done.stderr)
        if words[1] == "submit" and "--tenant" not in words:
            job_id = done.stdout.split()[0]
        if words[1] == "logs":
            assert "missing.txt" in done.stdout, done.stdout

    # And the AWS CLI's commands work against the stack with nothing but aws.env
    answers = {}
    for command in aws_block:
        expanded = command.replace("$BATCHPLANE_INGEST_BUCKET", env["BATCHPLANE_INGEST_BUCKET"]).replace(
            "$BATCHPLANE_ARTIFACT_BUCKET", env["BATCHPLANE_ARTIFACT_BUCKET"]
        )
        answers[" ".join(command.split()[:3])] = aws_cli(env, expanded, monkeypatch)
    assert len(answers["aws batch describe-job-queues"]) == 2
    assert answers["aws batch list-jobs"], "the jobs above ran on the emulator's on-demand queue"
