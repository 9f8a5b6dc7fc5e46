"""The sweeper at scale: one sweep of N unfinished jobs (default 100,000) on in-process moto.

The jobs are written as the store writes them (job item and index entry, tooling's seed.py) with
BatchWriteItem; Batch is a client that describes each job in the state it was seeded in (so the sweep
finds nothing new and writes nothing, as for quiet running jobs). The real sweep runs through the
real store and Batch adapter (no read pacing here: the pace is Batch's, printed as a floor). Printed:
wall time per sweep, DynamoDB calls and read units (by AWS's rules, bench/pricing.py), Batch calls,
and the peak memory the sweep allocates (tracemalloc, on during the sweep: the wall time includes
its overhead).

moto serves every Query by reading the whole table, so its time grows with the table and dominates
here; the counts of calls and units are what a sweep's time and price in AWS follow.

    python bench/sweep_scale.py [--jobs 100000]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from typing import Any

from harness import moto_stack
from pricing import PRICES, item_size, read_units, usd

SWEEPS_A_MONTH = 30 * 24 * 12  # every 5 minutes (SweepIntervalMinutes' default)
BATCH_READ_RATE = 20.0  # settings.BATCH_READ_RATE_PER_SECOND's default


class Reads:
    """DynamoDB calls and their read units, from the handlers' own client's answers."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units = 0.0

    def __call__(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "Query":  # per 4 KB of everything the page read; an index is eventually consistent
            self.units += read_units(sum(item_size(i) for i in parsed.get("Items", [])), consistent=False)
        elif model.name == "BatchGetItem":  # per item, eventually consistent
            found = [i for items in parsed.get("Responses", {}).values() for i in items]
            self.units += sum(read_units(item_size(i), consistent=False) for i in found)
        elif model.name == "GetItem":  # the sweep's cursor: strongly consistent
            self.units += read_units(item_size(parsed.get("Item")), consistent=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()

    with moto_stack():
        from batchplane.adapters.batch import BatchGateway
        from batchplane.adapters.clients import client
        from batchplane.adapters.store import DynamoJobStore
        from batchplane.service.sweep import sweep
        from batchplane.wiring import ports
        from batchplane_tools.seed import SeededBatch, seed_unfinished

        wired = ports()
        dynamodb = client("dynamodb")
        table = wired.store.table_name  # type: ignore[attr-defined]
        started = time.perf_counter()
        states = seed_unfinished(
            dynamodb,
            table,
            args.jobs,
            queue=wired.queues.spot,
            job_types=sorted(wired.policy.job_types),
            at=wired.clock() - timedelta(minutes=12),
        )
        seeded = time.perf_counter() - started
        batch = SeededBatch(states)
        wired.store = DynamoJobStore(table, dynamodb)
        wired.batch = BatchGateway(batch)  # type: ignore[arg-type]
        reads = Reads()
        dynamodb.meta.events.register("after-call.dynamodb", reads)

        tracemalloc.start()
        started = time.perf_counter()
        report = sweep(wired)
        wall = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if not report.complete or report.unfinished != args.jobs:
            raise SystemExit(f"the sweep did not read every job: {report.summary()}")
        described = sum(len(call) for call in batch.described)
        calls, units = dict(reads.calls), reads.units

    describe_calls = len(batch.described)
    print(f"sweep of {args.jobs:,} unfinished jobs (seeded in {seeded:.0f} s, BatchWriteItem)")
    print(f"  wall time           {wall:.1f} s on in-process moto (tracemalloc on)")
    print(f"  DynamoDB calls      {sum(calls.values()):,}  {calls}")
    print(
        f"  read units          {units:,.0f} RRU  (${usd('dynamodb_rru', units):.4f} a sweep,"
        f" ${usd('dynamodb_rru', units * SWEEPS_A_MONTH):.2f} a month at one sweep every 5 minutes)"
    )
    print("  writes              none (every job described as it is recorded: a quiet job costs no write)")
    print(
        f"  Batch calls         {describe_calls:,} DescribeJobs ({described:,} ids, at most"
        f" {max(len(c) for c in batch.described)} a call) + {batch.snapshots // 2} x 2 GetJobQueueSnapshot"
    )
    print(
        f"  Batch pace in AWS   {describe_calls / BATCH_READ_RATE:.0f} s at {BATCH_READ_RATE:.0f}"
        " DescribeJobs/s (BATCH_READ_RATE_PER_SECOND): the floor of a sweep's time there"
    )
    print(
        f"  peak memory         {peak / 2**20:.1f} MiB allocated during the sweep"
        " (tracemalloc, moto's side included)"
    )
    print(f"  prices              {PRICES['dynamodb_rru'].source}")


if __name__ == "__main__":
    main()
