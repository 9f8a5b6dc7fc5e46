"""The sweeper reads every unfinished job once a sweep, however many: past a Query page, across every
shard, a DescribeJobs call of at most 100 at a time, and on from a cursor when an invocation runs
short of time. Once a sweep is complete it records the jobs by state as gauges."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from batchplane.adapters.batch import BatchGateway
from batchplane.adapters.job_index import activity_shard
from batchplane.adapters.store import DynamoJobStore
from batchplane.models.job import JobStatus
from batchplane.observability import metrics
from batchplane.service.sweep import sweep
from batchplane.wiring import ports
from batchplane_tools.seed import SeededBatch, seed_unfinished
from tests.support import load_event, load_function

JOBS = 1_200
PAGE = 37  # index entries a Query reads at once: many pages a shard, chunks that straddle them


class ShortOfTime:
    """The Lambda context of an invocation that has time for `chunks` chunks of 100, then runs short."""

    def __init__(self, chunks: int) -> None:
        self.left = chunks

    def has_time(self) -> bool:
        self.left -= 1
        return self.left > 0


@pytest.fixture
def seeded(aws, monkeypatch):
    """1,200 unfinished jobs quiet for 12 minutes (past StaleAfterSeconds, under every RUNNABLE
    alert), a store that pages the index 37 entries at a time, and a Batch that describes each job as
    it was seeded (nothing new: a sweep writes nothing for them)."""
    table = aws.env["JOBS_TABLE_NAME"]
    client = aws.client("dynamodb")
    wired = ports()
    states = seed_unfinished(
        client,
        table,
        JOBS,
        queue=wired.queues.spot,
        job_types=sorted(wired.policy.job_types),
        at=wired.clock() - timedelta(minutes=12),
    )
    batch = SeededBatch(states)
    monkeypatch.setattr(wired, "store", DynamoJobStore(table, client, sweep_page=PAGE))
    monkeypatch.setattr(wired, "batch", BatchGateway(batch))  # type: ignore[arg-type]
    return batch


def described(batch: SeededBatch) -> list[str]:
    return [batch_id for call in batch.described for batch_id in call]


def test_a_sweep_reaches_every_job_of_every_shard_once(seeded, aws) -> None:
    # Given 1,200 quiet jobs over the index's 8 shards, read 37 index entries a Query
    # When one scheduled sweep runs
    report = load_function("sweeper").handler(load_event("schedule/sweep.json"), _context())

    # Then each job was described exactly once, at most 100 a DescribeJobs call
    assert Counter(described(seeded)) == Counter(list(seeded.states))
    assert max(len(call) for call in seeded.described) <= 100
    assert (report["complete"], report["unfinished"], report["checked"]) == (True, JOBS, JOBS)
    # ... which every shard held some of, and nothing was written for a job Batch had nothing new on
    shards = {activity_shard(f"00000000-0000-4000-8000-{int(i[6:]):012d}") for i in seeded.states}
    assert len(shards) == ports().store.activity_shards()
    assert report["reconciled"] == JOBS and report["redispatched"] == 0
    assert not [i for i in aws.table_items() if i["sk"]["S"] == "CURSOR"]


def test_an_invocation_short_of_time_leaves_a_cursor_and_the_next_goes_on_from_it(seeded, aws) -> None:
    # Given invocations that each have time for 3 chunks of 100
    reports = []
    # When the schedule invokes the sweeper until the sweep is complete
    while not reports or not reports[-1].complete:
        reports.append(sweep(ports(), has_time=ShortOfTime(3).has_time))
        assert len(reports) < 30

    # Then the sweep took several invocations, each job was described once across them, and the
    # cursor is gone once it is complete
    assert len(reports) > 2
    assert Counter(described(seeded)) == Counter(list(seeded.states))
    assert sum(r.unfinished for r in reports) == JOBS
    assert [r.complete for r in reports[:-1]] == [False] * (len(reports) - 1)
    assert not [i for i in aws.table_items() if i["sk"]["S"] == "CURSOR"]
    # ... and the count by state covers the whole sweep, not its last invocation
    expected = Counter(s.value for s in seeded.states.values())
    assert {k: v for k, v in reports[-1].by_state.items() if v} == dict(expected)


def test_a_complete_sweep_records_jobs_by_state_and_job_type(seeded, monkeypatch, capsys) -> None:
    # Given metrics on, as in Lambda
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    # When a sweep that needs two invocations completes
    sweep(ports(), has_time=ShortOfTime(5).has_time)
    capsys.readouterr()
    metrics.clear_metrics()
    sweep(ports())
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]

    # Then each unfinished state has a gauge, in total and per job type, with the whole sweep's count
    gauges = {
        (doc["state"], doc.get("job_type")): doc["JobsInState"][0] for doc in emitted if "JobsInState" in doc
    }
    by_state = Counter(s.value for s in seeded.states.values())
    for status in JobStatus:
        if not status.is_terminal:
            assert gauges[(status.value, None)] == by_state[status.value]
    job_types = sorted(ports().policy.job_types)
    running = sum(1 for n in range(JOBS) if n % 5 in (0, 1) and job_types[n % len(job_types)] == "sort-large")
    assert gauges[("RUNNING", "sort-large")] == running
    assert ("QUEUED", "word-count") in gauges  # a state with no job is 0, not a gap
    # ... and how many invocations the sweep took joins the invocation's own metrics
    assert metrics.metric_set["SweepInvocations"]["Value"] == [2.0]
    metrics.clear_metrics()


def _context():
    from tests.support import LambdaContext

    return LambdaContext()
