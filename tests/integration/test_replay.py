"""`batchplane replay` on a recorded history (tests/integration/fixtures/replay/history.json: five
jobs) against a candidate policy with three known changes (fixtures/replay/candidate.yaml): word-count
for analytics only, sort-large's out-of-memory kills not retried, checksum-manifest to on-demand after
one Spot reclaim. It reads the table only, prints what differs with each job's first divergence, and
its exit status tells "same" (0), "differs" (1) and "the candidate does not validate" (2) apart."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from batchplane.adapters.job_items import job_to_item, side_items
from batchplane.adapters.store import DEFAULT_RETENTION
from batchplane.models.job import Job
from batchplane_tools.cli.main import main
from tests.support import INGEST_BUCKET, POLICY_PATH

FIXTURES = Path(__file__).parent / "fixtures" / "replay"
CANDIDATE = FIXTURES / "candidate.yaml"


@pytest.fixture
def recorded(aws) -> str:
    """The history's jobs written to the stack's table as the store lays them out; the table's name."""
    table = aws.env["JOBS_TABLE_NAME"]
    dynamodb = aws.client("dynamodb")
    for data in json.loads((FIXTURES / "history.json").read_text()):
        job = Job.model_validate(data)
        for item in [
            job_to_item(job, DEFAULT_RETENTION),
            *side_items(job, None, job.updated_at, DEFAULT_RETENTION),
        ]:
            dynamodb.put_item(TableName=table, Item=item)
    return table


def replay(table: str, policy: Path, *extra: str) -> int:
    return main(
        [
            "replay",
            "--policy",
            str(policy),
            "--table",
            table,
            "--region",
            "us-east-1",
            "--ingest-bucket",
            INGEST_BUCKET,
            *extra,
        ]
    )


def scan(aws, table: str) -> list[dict[str, Any]]:
    return sorted(
        aws.client("dynamodb").scan(TableName=table)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"])
    )


def test_the_candidate_with_known_changes_differs_where_it_should_and_nowhere_else(
    aws, recorded, capsys
) -> None:
    before = scan(aws, recorded)

    # When the candidate is replayed over the history
    status = replay(recorded, CANDIDATE, "--format", "json")

    # Then it differs (exit 1), on exactly the three jobs it changes, each at its first divergence
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["jobs"] == 5 and report["differing"] == 3
    divergence = {d["job_id"]: d["divergence"] for d in report["divergences"]}
    assert divergence.keys() == {"sort-oom", "chk-spot", "wc-media"}
    assert divergence["wc-media"] == (
        "admission: recorded admitted; candidate refuses "
        "(job_type: tenant 'media' may not run job type word-count)"
    )
    assert divergence["sort-oom"].startswith(
        "attempt 1 failed: recorded retried; candidate gives up (attempt 1 ran out"
    )
    assert divergence["sort-oom"].endswith("OUT_OF_MEMORY: not retried by policy; giving up)")
    assert divergence["chk-spot"] == (
        "attempt 2 routing: recorded SPOT, 2 vCPU, 1024 MiB; candidate ON_DEMAND, 2 vCPU, 1024 MiB"
    )

    # And per job type, the figures move as the changes say
    sort = report["by_job_type"]["sort-large"]
    assert sort["retries"] == {"recorded": 1, "candidate": 0}
    assert sort["give-ups"] == {"recorded": 1, "candidate": 2}
    assert sort["largest memory, MiB"] == {"recorded": 512, "candidate": 256}
    # ...the OOM retry's 600 s on Spot with 512 MiB is no longer spent
    saved = (0.04048 + 0.5 * 0.004445) * 0.3 * 600 / 3600
    assert sort["estimated cost, USD"]["recorded"] - sort["estimated cost, USD"][
        "candidate"
    ] == pytest.approx(saved, abs=2e-6)
    checksum = report["by_job_type"]["checksum-manifest"]
    # ...the second attempt's 900 s run on demand instead of Spot (2 vCPU, 1 GB)
    dearer = (2 * 0.04048 + 0.004445) * 0.7 * 900 / 3600
    cost = checksum["estimated cost, USD"]
    assert cost["candidate"] - cost["recorded"] == pytest.approx(dearer, abs=2e-6)
    assert report["by_job_type"]["word-count"]["refused"] == {"recorded": 0, "candidate": 1}
    # And nothing was written
    assert scan(aws, recorded) == before


def test_the_text_report_has_a_table_per_job_type_and_the_divergences(recorded, capsys) -> None:
    assert replay(recorded, CANDIDATE) == 1

    out = capsys.readouterr().out
    assert out.startswith(f"replayed 5 job(s) against {CANDIDATE}: 3 differ")
    assert "sort-large (2 jobs, 1 differ)" in out
    assert "first divergence per job" in out and "chk-spot" in out


def test_the_policy_that_made_the_history_replays_without_a_difference(recorded, capsys) -> None:
    assert replay(recorded, POLICY_PATH) == 0

    assert "0 differ" in capsys.readouterr().out


def test_tenant_and_since_narrow_the_jobs_replayed(recorded, capsys) -> None:
    assert replay(recorded, CANDIDATE, "--tenant", "media", "--format", "json") == 1
    assert json.loads(capsys.readouterr().out)["jobs"] == 1

    # The history's jobs were created an hour apart from 09:00 on 2 November; from 11:00, three remain
    assert replay(recorded, CANDIDATE, "--since", "2026-11-02T11:00:00", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["jobs"] == 3 and {d["job_id"] for d in report["divergences"]} == {"chk-spot", "wc-media"}


def test_a_candidate_that_does_not_validate_exits_2_naming_the_field(
    recorded, tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        CANDIDATE.read_text().replace(
            "OUT_OF_MEMORY: {max_retries: 0}", "OUT_OF_MEMORY: {memory_factor: 0.5}"
        )
    )

    assert replay(recorded, broken) == 2

    err = capsys.readouterr().err
    assert "does not validate" in err
    assert "job_types.sort-large.retry.OUT_OF_MEMORY.memory_factor: Input should be greater than 1" in err


def test_a_job_still_waiting_for_its_retry_counts_the_retry_it_awaits(aws, recorded, capsys) -> None:
    # Given sort-oom as it stood between its attempts: the first failed, the retry not yet submitted
    data = next(d for d in json.loads((FIXTURES / "history.json").read_text()) if d["job_id"] == "sort-oom")
    waiting = Job.model_validate(
        {**data, "job_id": "sort-wait", "status": "RETRY_WAIT", "attempts": data["attempts"][:1]}
    )
    waiting = waiting.model_copy(update={"created_at": datetime.fromisoformat("2026-11-03T00:00:00+00:00")})
    for item in [
        job_to_item(waiting, DEFAULT_RETENTION),
        *side_items(waiting, None, waiting.updated_at, DEFAULT_RETENTION),
    ]:
        aws.client("dynamodb").put_item(TableName=recorded, Item=item)

    assert replay(recorded, CANDIDATE, "--since", "2026-11-03", "--format", "json") == 1

    [only] = json.loads(capsys.readouterr().out)["divergences"]
    assert only["recorded"]["retries"] == 1 and only["candidate"]["gave_up"]
