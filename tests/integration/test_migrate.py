"""`batchplane migrate` moves the jobs of the earlier item layout into the current one, once; the
runtime reads both layouts meanwhile."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.cli import main as cli
from batchplane_tools.migrate import migrate_table
from tests.conftest import AwsStack
from tests.support import api_event, get_job

EARLIER = json.loads(
    (Path(__file__).parent / "fixtures" / "earlier_layout_job.json").read_text(encoding="utf-8")
)
JOB_ID = EARLIER["job_id"]["S"]


def _partition(aws: AwsStack) -> dict[str, dict[str, Any]]:
    items = aws.client("dynamodb").query(
        TableName=aws.env["JOBS_TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{JOB_ID}"}},
    )["Items"]
    return {item["sk"]["S"]: item for item in items}


def test_migrate_moves_an_earlier_layout_job_once(
    aws: AwsStack, api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a table holding a job the earlier layout wrote
    dynamodb, table = aws.client("dynamodb"), aws.env["JOBS_TABLE_NAME"]
    dynamodb.put_item(TableName=table, Item=EARLIER)

    # When `batchplane migrate --dry-run` runs, it only counts
    assert cli.main(["migrate", "--table", table, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"1 job(s) of the earlier layout in {table}; nothing written")
    assert set(_partition(aws)) == {"JOB"}

    # When it runs for real, it moves the job; a second run finds nothing left
    assert cli.main(["migrate", "--table", table, "--retention-days", "30"]) == 0
    assert migrate_table(dynamodb, table, retention=timedelta(days=90)).found == []

    # Then the job item is bounded and the rest stands beside it
    partition = _partition(aws)
    assert "history_count" in partition["JOB"]
    assert list(partition["JOB"]["attempts"]["M"]) == ["2"]
    assert "ATTEMPT#0001" in partition
    # the records it wrote expire the stack's retention (here 30 days) after the job's last change
    finished = datetime(2026, 11, 20, 8, 20, tzinfo=UTC)
    assert partition["ATTEMPT#0001"]["expires_at"]["N"] == str(
        int((finished + timedelta(days=30)).timestamp())
    )
    assert [sk for sk in partition if sk.startswith("ART#")] == [
        f"ART#0002#output#s3://batchplane-test-artifacts/outputs/analytics/{JOB_ID}/counts.json"
    ]

    # And the API shows the same job as before the move
    seen = get_job(api, JOB_ID)
    assert [a["number"] for a in seen["attempts"]] == [1, 2]
    assert [h["event"] for h in seen["history"]] == [
        "admitted",
        "submitted",
        "fell_back",
        "retried",
        "submitted",
        "succeeded",
    ]
    assert [(a["role"], a["attempt"]) for a in seen["artifacts"]] == [("input", None), ("output", 2)]
    status, uses, _ = api(api_event("GET", "/artifacts", query={"uri": "s3://bucket/in.txt"}))
    assert (status, [u["job_id"] for u in uses["uses"]]) == (200, [JOB_ID])


def test_a_job_of_the_earlier_layout_is_moved_on_its_first_read(aws: AwsStack, api: Any) -> None:
    # Given a job the earlier layout wrote, never migrated
    aws.client("dynamodb").put_item(TableName=aws.env["JOBS_TABLE_NAME"], Item=EARLIER)

    # When the API reads it
    seen = get_job(api, JOB_ID)

    # Then it reads the same, and is in the current layout from then on
    assert [a["number"] for a in seen["attempts"]] == [1, 2]
    assert "history_count" in _partition(aws)["JOB"]
