"""A local stack's own files (local/stack_files.py): the state file it takes, beside another running
stack's; its directory and aws.env; and what it removes on stop, which is only its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from batchplane_tools.local.stack_files import StackFiles, running_stacks
from batchplane_tools.state_file import LocalInfo


def _info(pid: int) -> LocalInfo:
    return LocalInfo(
        api_url="http://127.0.0.1:8080",
        aws_endpoint_url="http://127.0.0.1:5000",
        region="us-east-1",
        ingest_bucket="ingest-bucket",
        artifact_bucket="artifact-bucket",
        pid=pid,
    )


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def test_a_stack_takes_the_file_asked_for_unless_a_running_stack_holds_it(tmp_path: Path) -> None:
    # Given the default file written by a running stack (this test's own process stands for it)
    asked = tmp_path / "batchplane-local.json"
    _info(os.getpid()).write(asked)

    # When another process's stack claims it, and when a stack claims a file a dead one left
    beside = StackFiles.claim(asked, pid=4242)
    stale = tmp_path / "stale.json"
    _info(_dead_pid()).write(stale)
    taken_over = StackFiles.claim(stale, pid=4242)

    # Then the first takes <name>-<pid>.json beside it, with its own directory; the stale one is taken
    assert beside.state_file == tmp_path / "batchplane-local-4242.json"
    assert beside.jobs == tmp_path / "batchplane-local-4242" / "jobs"
    assert beside.env_file == tmp_path / "batchplane-local-4242" / "aws.env"
    assert taken_over.state_file == stale
    assert running_stacks(asked) == [asked]


def test_the_env_file_sets_endpoint_credentials_region_and_the_state_file(tmp_path: Path) -> None:
    # Given a stack's files and where it listens
    files = StackFiles(tmp_path / "batchplane-local.json", pid=os.getpid())

    # When its env file is written and sourced by a shell with a profile, a session and another region
    files.write_env_file(_info(os.getpid()))
    shell = {
        "PATH": os.environ["PATH"],
        "AWS_PROFILE": "work",
        "AWS_SESSION_TOKEN": "x",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    printed = subprocess.run(
        ["bash", "-c", f". '{files.env_file}' && env"], env=shell, capture_output=True, text=True, check=True
    ).stdout
    env = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)

    # Then the AWS CLI and SDKs reach this stack, signed, in its region, and batchplane finds it
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("local", "local")
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["BATCHPLANE_LOCAL_FILE"] == str(files.state_file.resolve())
    assert env["BATCHPLANE_INGEST_BUCKET"] == "ingest-bucket"


def test_release_removes_the_directory_and_only_a_state_file_the_stack_wrote(tmp_path: Path) -> None:
    # Given a stack's directory with a job's output, and its state file since rewritten by another stack
    files = StackFiles(tmp_path / "batchplane-local.json", pid=4242)
    (files.jobs / "word-count" / "default").mkdir(parents=True)
    (files.jobs / "word-count" / "default" / "abc").write_text("output\n")
    _info(4343).write(files.state_file)

    # When the stack releases its files
    files.release()

    # Then its directory is gone and the other stack's state file stays; its own would have gone
    assert not files.directory.exists()
    assert LocalInfo.load(files.state_file).pid == 4343
    _info(4242).write(files.state_file)
    files.release()
    assert not files.state_file.exists()
