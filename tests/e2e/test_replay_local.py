"""`batchplane replay` against `batchplane local`: jobs run on the local stack, then a candidate policy
replayed over that stack's table, found through its state file, as a developer tries a policy change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchplane_tools.paths import ROOT
from tests.e2e.conftest import Local
from tests.support import POLICY_PATH

pytestmark = pytest.mark.e2e


def replay(local: Local, policy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`batchplane replay --policy POLICY --local-file <the stack's state file> ARGS`."""
    state = local.log.with_name("local.json")  # start_local writes it beside its log
    command = ["replay", "--policy", str(policy), "--local-file", str(state), *args]
    return subprocess.run(
        [sys.executable, "-m", "batchplane_tools.cli.main", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the test asserts on the exit status, with the output
    )


def candidate(tmp_path: Path, change: dict[str, Any], job_type: str = "word-count") -> Path:
    """The shipped policy with `change` applied to one of its job types."""
    document = yaml.safe_load(POLICY_PATH.read_text())
    document["job_types"][job_type].update(change)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def run(local: Local, job_type: str, key: str) -> dict[str, Any]:
    """A job of `job_type` on an object of its own, submitted over HTTP and run to its end."""
    bucket = local.info["ingest_bucket"]
    local.client("s3").put_object(Bucket=bucket, Key=key, Body=b"pear\napple\nfig\n")
    body = {"job_type": job_type, "parameters": {"input": f"s3://{bucket}/{key}"}}
    status, job = local.request("POST", "/jobs", body)
    assert status == 202, job
    return local.finished(job["job_id"], timeout=120)


@pytest.fixture(scope="module")
def finished(local: Local) -> list[dict[str, Any]]:
    """Two word-count jobs run to SUCCEEDED on the local stack (on-demand: the shipped policy's)."""
    done = [run(local, "word-count", f"incoming/local/manual/replay-{n}.txt") for n in range(2)]
    assert [job["status"] for job in done] == ["SUCCEEDED", "SUCCEEDED"], [j["history"] for j in done]
    return done


@pytest.fixture(scope="module")
def out_of_memory(local: Local) -> dict[str, Any]:
    """A sort-large job killed for memory at 256 MiB, then successful with 512 (memory_factor 2)."""
    done = run(local, "sort-large", "incoming/local/manual/replay-unsorted.txt")
    assert done["status"] == "SUCCEEDED", done["history"]
    assert [a["memory_mib"] for a in done["attempts"]] == [256, 512]
    return done


def test_replaying_the_running_policy_finds_no_difference(local: Local, finished, out_of_memory) -> None:
    # When the policy the stack runs is replayed over its table
    result = replay(local, POLICY_PATH, "--format", "json")

    # Then every recorded job is decided as it was: exit 0
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["jobs"] >= len(finished) and report["differing"] == 0


def test_a_candidate_that_routes_differently_exits_1_naming_each_job(
    local: Local, finished, tmp_path: Path
) -> None:
    # Given a candidate that sends word-count to Spot first
    spot_first = candidate(tmp_path, {"capacity": "SPOT_FIRST"})

    # When it is replayed over the stack's table
    result = replay(local, spot_first, "--format", "json")

    # Then the exit status is 1 and each word-count job's first attempt is routed differently
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    word_count = report["by_job_type"]["word-count"]
    assert word_count["differing"] == word_count["jobs"] >= len(finished)
    assert word_count["first attempt on Spot"] == {"recorded": 0, "candidate": word_count["jobs"]}
    ids = {d["job_id"]: d["divergence"] for d in report["divergences"]}
    for job in finished:
        assert ids[job["job_id"]].startswith("attempt 1 routing: recorded ON_DEMAND"), ids


def test_a_candidate_with_another_memory_factor_gives_the_retry_that_memory(
    local: Local, out_of_memory, tmp_path: Path
) -> None:
    # Given a candidate that quadruples sort-large's memory after an out-of-memory kill
    retry = yaml.safe_load(POLICY_PATH.read_text())["job_types"]["sort-large"]["retry"]
    retry["OUT_OF_MEMORY"]["memory_factor"] = 4.0
    quadruple = candidate(tmp_path, {"retry": retry}, job_type="sort-large")

    # When it is replayed over the stack's table
    result = replay(local, quadruple, "--format", "json")

    # Then the exit status is 1 and the job's second attempt asks 1024 MiB instead of 512
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["by_job_type"]["sort-large"]["largest memory, MiB"] == {"recorded": 512, "candidate": 1024}
    [divergence] = [d for d in report["divergences"] if d["job_id"] == out_of_memory["job_id"]]
    assert divergence["divergence"].startswith("attempt 2 routing:"), divergence
    assert "512 MiB" in divergence["divergence"] and "1024 MiB" in divergence["divergence"]


def test_a_candidate_that_does_not_validate_exits_2_naming_the_field(local: Local, tmp_path: Path) -> None:
    broken = candidate(tmp_path, {"timeout_seconds": -1})

    result = replay(local, broken)

    assert result.returncode == 2
    assert "job_types.word-count.timeout_seconds" in result.stderr
