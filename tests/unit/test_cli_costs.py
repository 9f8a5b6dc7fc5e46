"""`batchplane usage`, the cost lines of `batchplane get`, and `replay`'s arguments, against the stub
HTTP server of test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_cli import Stub, attempt, cli, job, local_file, parse, stub  # noqa: F401 (fixture)

USAGE = {
    "from": "2026-11",
    "to": "2026-12",
    "currency": "USD",
    "total_usd": 1.5,
    "by_job_type": [
        {
            "job_type": "sort-large",
            "outcome": "SUCCEEDED",
            "jobs": 3,
            "cost_usd": 1.5,
            "extra_usd": 0.25,
            "cost_per_job_usd": 0.5,
        }
    ],
    "months": [{"month": "2026-11", "spent_usd": 1.5, "reserved_usd": 0.1, "budget_usd": 100.0, "lines": []}],
    "prices": {"region": "us-east-1", "architecture": "x86_64", "source": "s", "as_of": "2026-03-01"},
}


def test_usage_asks_for_its_months_and_prints_the_totals(
    stub: Stub,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stub.reply("GET", "/usage?from=2026-11&to=2026-12", 200, USAGE)

    assert (
        cli(
            "usage",
            "--from",
            "2026-11",
            "--to",
            "2026-12",
            "--local-file",
            str(local_file(tmp_path, stub.url)),
        )
        == 0
    )

    out = capsys.readouterr().out
    assert out.splitlines()[0] == "usage 2026-11 .. 2026-12: $1.5000 (estimated)"
    assert "sort-large  SUCCEEDED  3     $1.5000  $0.5000  $0.2500" in out
    assert "2026-11  $1.5000  $0.1000   $100.0000" in out


def test_usage_without_months_asks_for_this_one(
    stub: Stub,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stub.reply("GET", "/usage", 200, {**USAGE, "by_job_type": [], "months": []})

    assert cli("usage", "--json", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    assert [r.path for r in stub.requests] == ["/usage"]


def test_a_month_that_is_not_yyyy_mm_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("usage", "--from", "2026-13")

    assert exit_.value.code == 2
    assert "not a month YYYY-MM" in capsys.readouterr().err


def test_get_prints_each_attempts_cost_and_the_jobs_split(
    stub: Stub,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cost = {"total_usd": 0.003, "successful_usd": 0.002, "extra_usd": 0.0015, "running": False}
    stub.reply(
        "GET",
        "/jobs/01A",
        200,
        job(
            "01A",
            "SUCCEEDED",
            attempts=[
                attempt(1, "SPOT", "FAILED", cost_usd=0.001),
                attempt(2, "SPOT", "SUCCEEDED", cost_usd=0.002),
            ],
            cost=cost,
        ),
    )

    assert cli("get", "01A", "--local-file", str(local_file(tmp_path, stub.url))) == 0

    out = capsys.readouterr().out
    assert "cost        $0.0030 (successful attempt $0.0020, retries and fallbacks $0.0015; estimated)" in out
    assert "$0.0010" in out and "COST" in out


def test_replay_needs_a_candidate_and_reads_since_as_utc() -> None:
    with pytest.raises(SystemExit):
        parse("replay")

    args = parse("replay", "--policy", "c.yaml", "--since", "2026-11-01", "--tenant", "t", "--format", "json")

    assert args.since.isoformat() == "2026-11-01T00:00:00+00:00"
    assert (args.tenant, args.format, args.table) == ("t", "json", None)
