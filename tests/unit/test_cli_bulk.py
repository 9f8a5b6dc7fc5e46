"""`batchplane cancel` and `retry` by filter against a stub HTTP server: the calls they send (one
operation, one key, following next_token; a busy answer sent again) and what they print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.cli import bulk
from tests.unit import test_cli
from tests.unit.test_cli import Stub, cli, local_file, parse

stub = test_cli.stub  # the stub HTTP server, a fixture of the CLI's tests

ZEROS = {"matched": 0, "cancelled": 0, "retried": 0, "changed": 0, "over_limit": 0, "refused": 0}


def answer(
    action: str, outcomes: dict[str, str], next_token: str | None = None, **more: Any
) -> dict[str, Any]:
    counts = dict(ZEROS)
    for outcome in outcomes.values():
        counts[outcome] += 1
    return {
        "action": action,
        "dry_run": False,
        "as_of": "2026-11-02T10:00:00.000000Z",
        "counts": counts,
        "jobs": [{"job_id": job_id, "outcome": outcome} for job_id, outcome in outcomes.items()],
        "next_token": next_token,
        **more,
    }


def test_bulk_retry_follows_next_token_with_one_key_and_lists_the_jobs_it_left(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an operation of two pages, the second with a job over the in-flight limit
    stub.reply("POST", "/bulk/retry", 200, answer("retry", {"01A": "retried", "01B": "retried"}, "tok.1"))
    stub.reply("POST", "/bulk/retry", 200, answer("retry", {"01C": "over_limit"}))

    # When the failed word-count jobs created since a (zoneless, so UTC) time are retried
    code = cli(
        "retry",
        "--status",
        "failed,cancelled",
        "--job-type",
        "word-count",
        "--created-from",
        "2026-11-01T00:00",
        "--limit",
        "2",
        "--local-file",
        str(local_file(tmp_path, stub.url)),
    )

    # Then both calls carry the same filter and key, the second the first's token
    assert code == 0
    first, second = (r.json() for r in stub.requests)
    criteria = {
        "status": ["FAILED", "CANCELLED"],
        "job_type": "word-count",
        "created_from": "2026-11-01T00:00:00+00:00",
    }
    assert first == {"filter": criteria, "dry_run": False, "limit": 2}
    assert second == {**first, "next_token": "tok.1"}
    keys = {r.headers["Idempotency-Key"] for r in stub.requests}
    assert len(keys) == 1
    # and the job it left is listed, with the counts and the key to finish a run cut short
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["01C", "over_limit"]
    assert out[-1].startswith(
        "1 over_limit, 2 retried (as of 2026-11-02T10:00:00Z; 2 call(s); --idempotency-key cli-"
    )


def test_dry_run_sends_no_key_and_says_how_many_would_change(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.reply(
        "POST", "/bulk/cancel", 200, answer("cancel", {"01A": "matched", "01B": "matched"}, dry_run=True)
    )

    code = cli(
        "cancel", "--status", "RUNNING", "--dry-run", "--local-file", str(local_file(tmp_path, stub.url))
    )

    assert code == 0
    [request] = stub.requests
    assert "Idempotency-Key" not in request.headers
    assert request.json() == {"filter": {"status": ["RUNNING"]}, "dry_run": True}
    assert capsys.readouterr().out.splitlines()[-1] == (
        "2 job(s) would be cancelled (dry run: nothing changed; as of 2026-11-02T10:00:00Z)"
    )


def test_a_busy_api_is_sent_the_same_call_again(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bulk.time, "sleep", lambda seconds: None)
    busy = {"error": {"code": "unavailable", "message": "AWS is busy", "details": []}}
    stub.reply("POST", "/bulk/cancel", 503, busy)
    stub.reply("POST", "/bulk/cancel", 200, answer("cancel", {"01A": "cancelled"}))

    code = cli("cancel", "--job-type", "word-count", "--local-file", str(local_file(tmp_path, stub.url)))

    assert code == 0
    assert len(stub.requests) == 2
    assert stub.requests[0].body == stub.requests[1].body
    assert stub.requests[0].headers["Idempotency-Key"] == stub.requests[1].headers["Idempotency-Key"]
    assert capsys.readouterr().out.startswith("1 cancelled (")


def test_an_api_busy_past_every_try_names_the_key_to_finish_it(
    stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bulk.time, "sleep", lambda seconds: None)
    stub.reply("POST", "/bulk/cancel", 504, {"message": "Endpoint request timed out"})
    path = str(local_file(tmp_path, stub.url))

    code = cli("cancel", "--job-type", "word-count", "--idempotency-key", "op-7", "--local-file", path)

    assert code == 1
    assert len(stub.requests) == bulk.TRIES
    assert capsys.readouterr().err.rstrip().endswith("run it again with --idempotency-key op-7 to finish it")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("cancel",), "JOB_ID, or a filter"),
        (("retry", "--dry-run"), "JOB_ID, or a filter"),
        (("cancel", "01A", "--status", "RUNNING"), "takes no filter"),
        (("retry", "01A", "--dry-run"), "takes no filter"),
    ],
)
def test_a_job_id_or_a_filter_not_both_nor_neither(
    stub: Stub, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    assert cli(*argv, "--local-file", str(local_file(tmp_path, stub.url))) == 2
    assert says in capsys.readouterr().err
    assert stub.requests == []


def test_a_bad_status_or_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (("cancel", "--status", "RUNNING,DONE"), ("retry", "--created-to", "yesterday")):
        with pytest.raises(SystemExit) as exited:
            parse(*argv)
        assert exited.value.code == 2
