"""The sweeper at scale: one sweep of N unfinished jobs (default 100,000) on in-process moto.

The jobs are written as the store writes them (job item and index entry, tooling's seed.py) with
BatchWriteItem; Batch is a client that describes each job in the state it was seeded in (so the sweep
finds nothing new and writes nothing, as for quiet running jobs). The real sweep runs through the
real store and Batch adapter (no read pacing here: the pace is Batch's, printed as a floor). Printed:
wall time per sweep, DynamoDB calls and read units (by AWS's rules, bench/pricing.py), Batch calls,
and the peak memory a sweep allocates (tracemalloc, during a second sweep: it slows Python down).

moto serves every Query by reading the whole table and spends ~0.1-1 s serializing each answer, so
its time dominates (10,000 jobs: ~13 minutes on a busy machine). `--dynamodb memory` (the default)
serves the same calls from an in-memory table instead (`MemoryDynamoDB`: the by_activity index in
sort-key order, pages cut at 1 MB of item size by AWS's rules, as DynamoDB pages): the sweep's own
time and memory at 100,000 jobs, and the calls and units, which are what its time and price in AWS
follow. `--dynamodb moto` runs it on moto.

    python bench/sweep_scale.py [--jobs 100000] [--dynamodb memory|moto]
"""

from __future__ import annotations

import argparse
import bisect
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
    """DynamoDB calls and their read units, from the answers the store's client got."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.units = 0.0

    def __call__(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        self.record(model.name, parsed)

    def record(self, operation: str, parsed: Any) -> None:
        self.calls[operation] += 1
        if operation == "Query":  # per 4 KB of everything the page read; an index is eventually consistent
            self.units += read_units(sum(item_size(i) for i in parsed.get("Items", [])), consistent=False)
        elif operation == "BatchGetItem":  # per item, eventually consistent
            found = [i for items in parsed.get("Responses", {}).values() for i in items]
            self.units += sum(read_units(item_size(i), consistent=False) for i in found)
        elif operation == "GetItem":  # the sweep's cursor: strongly consistent
            self.units += read_units(item_size(parsed.get("Item")), consistent=True)


PAGE_BYTES = 1024 * 1024  # a Query page stops at 1 MB of items read


class MemoryDynamoDB:
    """The DynamoDB calls a sweep makes, served from memory: items by key, and the by_activity index
    (sparse: items with gsi3pk) in sort-key order per partition. Each answer is recorded in `reads`."""

    def __init__(self, reads: Reads) -> None:
        self.reads = reads
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.activity: dict[str, list[tuple[str, str, str]]] = {}

    def _key(self, key: dict[str, Any]) -> tuple[str, str]:
        return key["pk"]["S"], key["sk"]["S"]

    def batch_write_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        for requests in RequestItems.values():
            for request in requests:
                self.put_item(TableName="", Item=request["PutRequest"]["Item"], record=False)
        return {}

    def put_item(self, *, TableName: str, Item: dict[str, Any], record: bool = True) -> dict[str, Any]:
        key = self._key(Item)
        self.items[key] = Item
        if "gsi3pk" in Item:
            bisect.insort(self.activity.setdefault(Item["gsi3pk"]["S"], []), (Item["gsi3sk"]["S"], *key))
        if record:
            self.reads.record("PutItem", {})
        return {}

    def delete_item(self, *, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        self.items.pop(self._key(Key), None)
        self.reads.record("DeleteItem", {})
        return {}

    def get_item(
        self, *, TableName: str, Key: dict[str, Any], ConsistentRead: bool = False
    ) -> dict[str, Any]:
        item = self.items.get(self._key(Key))
        answer = {"Item": item} if item is not None else {}
        self.reads.record("GetItem", answer)
        return answer

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        [(table, request)] = RequestItems.items()
        found = [self.items[k] for k in map(self._key, request["Keys"]) if k in self.items]
        answer = {"Responses": {table: found}}
        self.reads.record("BatchGetItem", answer)
        return answer

    def query(self, **request: Any) -> dict[str, Any]:
        if request.get("IndexName") != "by_activity":
            raise NotImplementedError(f"MemoryDynamoDB serves the sweep's Query only, not {request}")
        entries = self.activity.get(request["ExpressionAttributeValues"][":shard"]["S"], [])
        start = request.get("ExclusiveStartKey")
        at = 0
        if start is not None:
            at = bisect.bisect_right(entries, (start["gsi3sk"]["S"], start["pk"]["S"], start["sk"]["S"]))
        page: list[dict[str, Any]] = []
        size = 0
        while at < len(entries) and size < PAGE_BYTES and len(page) < request.get("Limit", len(entries)):
            item = self.items[entries[at][1:]]
            page.append(item)
            size += item_size(item)
            at += 1
        answer: dict[str, Any] = {"Items": page}
        if at < len(entries):
            last = page[-1]
            answer["LastEvaluatedKey"] = {k: last[k] for k in ("pk", "sk", "gsi3pk", "gsi3sk")}
        self.reads.record("Query", answer)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--dynamodb", choices=("memory", "moto"), default="memory")
    args = parser.parse_args()

    with moto_stack():
        from batchplane.adapters.batch import BatchGateway
        from batchplane.adapters.clients import client
        from batchplane.adapters.store import DynamoJobStore
        from batchplane.adapters.sweep_items import DynamoSweepBook
        from batchplane.service.sweep import sweep
        from batchplane.wiring import ports
        from batchplane_tools.seed import SeededBatch, seed_unfinished

        wired = ports()
        # Quiet jobs: past the age at which the sweeper asks Batch about them, short of every job
        # type's stuck alert (the policy's shortest, STARTING, is 10 minutes: as long as the default
        # STALE_AFTER_SECONDS), so that no job is alerted on and the sweep writes nothing.
        wired.stale_after = timedelta(minutes=5)
        age = timedelta(minutes=7)
        reads = Reads()
        dynamodb: Any = client("dynamodb") if args.dynamodb == "moto" else MemoryDynamoDB(reads)
        table = wired.store.table_name  # type: ignore[attr-defined]
        started = time.perf_counter()
        states = seed_unfinished(
            dynamodb,
            table,
            args.jobs,
            queue=wired.queues.spot,
            job_types=sorted(wired.policy.job_types),
            at=wired.clock() - age,
        )
        seeded = time.perf_counter() - started
        batch = SeededBatch(states)
        wired.store = DynamoJobStore(table, dynamodb)
        wired.sweeps = DynamoSweepBook(table, dynamodb)
        wired.batch = BatchGateway(batch)  # type: ignore[arg-type]
        if args.dynamodb == "moto":
            dynamodb.meta.events.register("after-call.dynamodb", reads)

        started, cpu = time.perf_counter(), time.process_time()
        report = sweep(wired)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if not report.complete or report.unfinished != args.jobs:
            raise SystemExit(f"the sweep did not read every job: {report.summary()}")
        described = sum(len(call) for call in batch.described)
        describe_calls, widest, snapshots = (
            len(batch.described),
            max(map(len, batch.described)),
            batch.snapshots,
        )
        calls, units = dict(reads.calls), reads.units
        tracemalloc.start()  # a second sweep, for its peak memory: tracemalloc slows Python down
        sweep(wired)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    served = "in-process moto" if args.dynamodb == "moto" else "an in-memory DynamoDB"
    print(f"sweep of {args.jobs:,} unfinished jobs on {served} (seeded in {seeded:.0f} s, BatchWriteItem)")
    print(f"  wall time           {wall:.1f} s ({cpu:.1f} s of CPU)")
    print(f"  DynamoDB calls      {sum(calls.values()):,}  {calls}")
    print(
        f"  read units          {units:,.0f} RRU  (${usd('dynamodb_rru', units):.4f} a sweep,"
        f" ${usd('dynamodb_rru', units * SWEEPS_A_MONTH):.2f} a month at one sweep every 5 minutes)"
    )
    print("  writes              the two queue fronts (PutItem); none for a job Batch has nothing new on")
    print(
        f"  Batch calls         {describe_calls:,} DescribeJobs ({described:,} ids, at most"
        f" {widest} a call) + {snapshots} GetJobQueueSnapshot"
    )
    print(
        f"  Batch pace in AWS   {describe_calls / BATCH_READ_RATE:.0f} s at {BATCH_READ_RATE:.0f}"
        " DescribeJobs/s (BATCH_READ_RATE_PER_SECOND): the floor of a sweep's time there"
    )
    print(f"  peak memory         {peak / 2**20:.1f} MiB allocated during the sweep (tracemalloc)")
    print(f"  prices              {PRICES['dynamodb_rru'].source}")


if __name__ == "__main__":
    main()
