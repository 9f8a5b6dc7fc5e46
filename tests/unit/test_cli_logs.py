"""`batchplane logs`: an attempt's log page by page, --follow until the attempt ends; and `get`
pointing a failed job at it. Against a stub of the REST API (tests/unit/test_cli.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_cli import Stub, attempt, cli, job, local_file, stub  # noqa: F401  (stub: a fixture)

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
