"""The jobs' output in the local CloudWatch Logs (local/job_logs.py): whole lines while a job runs,
the rest at its end and before its end goes to the bus; and the emulator's cap on the files it keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from batchplane_tools.emulator.supervisor import Supervisor
from batchplane_tools.local.job_logs import LOG_GROUP, LogShipper

STREAM = "batchplane-local-word-count/default/abc"


@pytest.fixture
def logs() -> Any:
    with mock_aws():
        yield boto3.client("logs", region_name="us-east-1")


def _messages(logs: Any) -> list[str]:
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=STREAM, startFromHead=True)["events"]
    return [e["message"] for e in events]


def test_whole_lines_ship_while_running_and_the_rest_before_the_end_is_told(
    logs: Any, tmp_path: Path
) -> None:
    # Given a running job's output file with two whole lines and one being written
    output = tmp_path / STREAM
    output.parent.mkdir(parents=True)
    output.write_bytes(b"reading\n\ncounted 2 lines\nwrit")
    state = {"ended": False}
    shipper = LogShipper(logs, lambda: [(STREAM, output, state["ended"])])

    # When the shipper runs, then the job finishes its line and ends, and its end is about to go to the bus
    shipper.ship()
    while_running = _messages(logs)
    with output.open("ab") as handle:
        handle.write(b"ing\ndone")
    state["ended"] = True
    shipper.before_event({"status": "FAILED", "container": {"logStreamName": STREAM}})
    shipper.ship()  # nothing twice

    # Then the whole lines came first (an empty line as a blank event), the rest before the end
    assert while_running == ["reading", " ", "counted 2 lines"]
    assert _messages(logs) == ["reading", " ", "counted 2 lines", "writing", "done"]


def test_a_job_that_only_is_runnable_has_no_stream_and_other_streams_are_left_alone(
    logs: Any, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    output.write_bytes(b"x\n")
    shipper = LogShipper(logs, lambda: [(STREAM, output, False), ("other/default/def", output, False)])

    shipper.before_event({"status": "RUNNABLE", "container": {}})
    shipper.before_event({"status": "FAILED", "container": {}})  # cancelled before it ran
    assert logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"] == []
    shipper.before_event({"status": "RUNNING", "container": {"logStreamName": STREAM}})

    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=LOG_GROUP)["logStreams"]] == [
        STREAM
    ]


def test_the_supervisor_keeps_the_newest_ended_jobs_files_only(tmp_path: Path) -> None:
    # Given a supervisor keeping 2 ended jobs' output in a directory of the stack's
    supervisor = Supervisor(
        python="python", cwd=None, job_environment={}, log_dir=tmp_path / "jobs", keep_logs=2
    )
    directory = supervisor.make_log_dir()
    files = []
    for name in ("a", "b", "c"):
        path = directory / "word-count" / "default" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
        files.append(path)

    # When three jobs end in turn, then the stack stops
    for path in files:
        supervisor.retire_log(path)
    kept = sorted(p.name for p in directory.rglob("*") if p.is_file())
    supervisor.remove_log_dir()

    # Then the oldest went once a third ended; the directory given is its owner's to remove
    assert kept == ["b", "c"]
    assert directory.is_dir()


def test_a_temporary_log_directory_goes_with_the_emulator(tmp_path: Path) -> None:
    supervisor = Supervisor(python="python", cwd=None, job_environment={})
    directory = supervisor.make_log_dir()
    (directory / "x").write_text("x")

    supervisor.remove_log_dir()

    assert not directory.exists()
