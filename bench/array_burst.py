"""A burst of dropped files submitted as array jobs, against in-process moto.

N object-created records go through the real file-drop handler (SQS batches of 10, as the ingest
queue's mapping delivers them); the first attempts wait in the array queue, which the real coalescer
handler drains in batches of --batch-size messages (the ArrayBatchSize stack parameter; Lambda's poller
gathers them, here the bench does). Figures: SubmitJob calls made and the time the coalescer took to
submit everything (paced by the same RateLimiter as the dispatcher; on moto, mostly moto's own
DynamoDB work for the ~1 claim per object) beside the time the account's SubmitJob limit alone imposes,
AWS calls per object on each stage, the coalescer's peak traced memory per invocation (one invocation
in --trace-every is traced: tracemalloc slows one ~4x), and the books checked job by job: every
drop is one job, every job is claimed by exactly one array at one index, every array's manifest names
exactly its jobs, no job in two arrays, no index twice. Beside it: what one SubmitJob per file costs at
the configured dispatch rate (DispatcherConcurrency x SubmitRatePerSecond).

    python bench/array_burst.py [--drops 100000] [--batch-size 1000] [--max-size 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness import ROOT, count_calls, moto_stack, object_created, sqs_record

TENANTS = ("analytics", "research")


def _policy(args: argparse.Namespace) -> Path:
    import yaml

    policy = yaml.safe_load((ROOT / "layers" / "core" / "policy.yaml").read_text())
    word_count = policy["job_types"]["word-count"]
    # Room for the whole burst in flight: this bench measures submission, not the quota.
    word_count["admission"]["max_in_flight_per_tenant"] = args.drops + 1
    word_count["array"] = {"max_size": args.max_size, "max_wait_seconds": args.max_wait}
    path = Path("/tmp/batchplane-bench-array-policy.yaml")
    path.write_text(yaml.safe_dump(policy))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drops", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000, help="messages a coalescer invocation gets")
    parser.add_argument("--max-size", type=int, default=1000, help="the policy's array.max_size")
    parser.add_argument("--max-wait", type=int, default=2, help="the policy's array.max_wait_seconds")
    parser.add_argument(
        "--trace-every",
        type=int,
        default=10,
        help="trace memory on one coalescer invocation in N (tracemalloc makes one ~4x slower)",
    )
    parser.add_argument(
        "--dispatch-rate", type=float, default=40.0, help="today's SubmitJob rate, per second"
    )
    args = parser.parse_args()

    with moto_stack(_policy(args)) as (session, stack):
        from batchplane_tools.functions import LambdaContext, load_function

        bucket = os.environ["INGEST_BUCKET"]
        sqs = session.client("sqs")
        ingest = load_function("file_drop").handler
        coalesce = load_function("coalescer").handler
        ingest_arn = _arn(stack.refs["IngestQueue"])

        def notification(i: int) -> str:
            return object_created(bucket, f"incoming/{TENANTS[i % 2]}/word-count/burst/file {i:06d} ü.txt", i)

        array_url = stack.refs["ArrayQueue"]
        array_arn = _arn(array_url)
        poller = _Poller(sqs, array_url)

        # Stage 1: the drops, through the file-drop handler.
        calls = count_calls(("dynamodb", "sqs", "s3", "batch"))
        started = time.perf_counter()
        for start in range(0, args.drops, 10):
            records = [
                sqs_record(notification(i), source_arn=ingest_arn, message_id=f"m{i}")
                for i in range(start, min(start + 10, args.drops))
            ]
            with _quiet():
                result = ingest({"Records": records}, LambdaContext())
            assert result == {"batchItemFailures": []}, result
            if start % 1000 == 990:
                poller.take()  # keep moto's queue short: it scans every message on each receive and delete
            if start and start % 10_000 == 0:
                print(f"  ... {start} drops ingested, {time.perf_counter() - started:.0f} s", flush=True)
        ingest_seconds = time.perf_counter() - started
        ingest_calls = Counter(calls)
        calls.clear()

        # Stage 2: the coalescer drains the array queue, a batch at a time, as Lambda's poller does.
        invocations, peaks = 0, []
        started = time.perf_counter()
        while True:
            batch = poller.batch(args.batch_size)
            if not batch:
                if _queue_empty(sqs, array_url):
                    break
                time.sleep(0.5)  # a deferred partial array waits out its max_wait
                continue
            records = [
                sqs_record(
                    m["Body"],
                    source_arn=array_arn,
                    message_id=m["MessageId"],
                    receive_count=int(m["Attributes"]["ApproximateReceiveCount"]),
                )
                for m in batch
            ]
            for record, message in zip(records, batch, strict=True):
                record["attributes"]["SentTimestamp"] = message["Attributes"]["SentTimestamp"]
            traced = invocations % args.trace_every == 0
            if traced:
                tracemalloc.start()
            with _quiet():
                result = coalesce({"Records": records}, LambdaContext())
            if traced:
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            invocations += 1
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            assert not failed, f"{len(failed)} records failed"
            if invocations % 10 == 0:
                print(
                    f"  ... {invocations} coalescer invocations, {time.perf_counter() - started:.0f} s",
                    flush=True,
                )
        submit_seconds = time.perf_counter() - started
        submit_calls = Counter(calls)

        books = _check_books(session, stack, args.drops)

    submits = submit_calls.get("batch:SubmitJob", 0)
    print(f"{args.drops:,} dropped files through file_drop -> array queue -> coalescer (in-process moto)")
    print(
        f"  policy array: max_size {args.max_size}, max_wait_seconds {args.max_wait}; "
        f"coalescer batch {args.batch_size} messages"
    )
    print(f"  ingest: {ingest_seconds:.0f} s, AWS calls per object {_per(ingest_calls, args.drops)}")
    print(
        f"  submit: {submits} SubmitJob calls for {args.drops:,} jobs in {invocations} invocations, "
        f"{submit_seconds:.1f} s; AWS calls per object {_per(submit_calls, args.drops)}"
    )
    print(
        f"  SubmitJob time at {args.dispatch_rate:.0f}/s: {submits / args.dispatch_rate:.1f} s "
        "(SubmitJob calls / rate)"
    )
    print(
        f"  coalescer peak traced memory per invocation: {max(peaks) / 2**20:.1f} MiB "
        f"({len(peaks)} of {invocations} invocations traced)"
    )
    print(
        f"  books: {books['jobs']:,} jobs, {books['claimed']:,} claimed once each, {books['arrays']} arrays "
        f"of {books['children']:,} children; lost {books['lost']}, duplicated {books['duplicated']}"
    )
    one_per_file = args.drops / args.dispatch_rate
    print(
        f"  one SubmitJob per file at {args.dispatch_rate:.0f}/s: {args.drops:,} calls, "
        f"{one_per_file:.0f} s ({one_per_file / 60:.1f} min)"
    )


def _arn(url: str) -> str:
    return f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[-1]}"


@contextlib.contextmanager
def _quiet() -> Any:
    with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
        yield


class _Poller:
    """Lambda's SQS poller, for the bench: it takes messages off the queue as they arrive.

    moto's queue scans every message it holds on each receive and each delete, so 100,000 waiting
    messages would make the bench measure moto's SQS; Lambda's poller, like this one, keeps the queue
    short. Messages are deleted when taken: the bench fails on any failed record, so none is lost.
    """

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url
        self.waiting: deque[dict[str, Any]] = deque()

    def take(self) -> None:
        while got := self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            self.waiting.extend(got)
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)],
            )

    def batch(self, most: int) -> list[dict[str, Any]]:
        self.take()
        return [self.waiting.popleft() for _ in range(min(most, len(self.waiting)))]


def _queue_empty(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    waiting = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")
    return all(int(attributes.get(name, "0")) == 0 for name in waiting)


def _per(calls: Counter[str], objects: int) -> str:
    detail = ", ".join(f"{name} {count / objects:.4f}" for name, count in calls.most_common())
    return f"{sum(calls.values()) / objects:.4f} ({detail})"


def _stored_items(table_name: str) -> Iterator[dict[str, Any]]:
    """Every item of the table as DynamoDB's JSON, read from moto's own store.

    moto's Scan walks the whole table again for every page it returns, so scanning the ~400,000 items
    of a 100,000-drop burst took longer than the burst itself; the books are the same either way.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table_name)
    for by_sort_key in table.items.values():
        for item in by_sort_key.values():
            yield item.to_json()["Attributes"]


def _check_books(session: Any, stack: Any, drops: int) -> dict[str, int]:
    """Every job claimed once, every array's members exactly its claimed jobs."""
    s3 = session.client("s3")
    claims: dict[str, tuple[str, int]] = {}
    members: dict[tuple[str, int], str] = {}
    manifests: dict[str, str] = {}
    jobs = 0
    for item in _stored_items(stack.refs["JobsTable"]):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk.startswith("JOB#") and sk == "JOB":
            jobs += 1
            attempt = item["attempts"]["M"]["1"]["M"]
            if "array_name" in attempt:
                claims[pk[4:]] = (attempt["array_name"]["S"], int(attempt["array_index"]["N"]))
        elif pk.startswith("ARRAY#") and sk.startswith("PART#"):
            base = int(sk[5:]) * 100
            for n, member in enumerate(item["members"]["L"]):
                if member["S"]:
                    members[(pk[6:], base + n)] = member["S"].split("#")[0]
        elif pk.startswith("ARRAY#") and sk == "ARRAY":
            manifests[pk[6:]] = item["manifest_uri"]["S"]
    listed: Counter[str] = Counter()
    children = 0
    for name, uri in manifests.items():
        manifest_bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=manifest_bucket, Key=key)["Body"].read().decode()
        for line in body.splitlines():
            entry = json.loads(line)
            children += 1
            listed[entry["job_id"]] += 1
            assert members.get((name, entry["index"])) in (entry["job_id"], None)
    claimed_right = sum(1 for job_id, at in claims.items() if members.get(at) == job_id)
    return {
        "jobs": jobs,
        "claimed": claimed_right,
        "arrays": len(manifests),
        "children": children,
        "lost": drops - len({j for j, n in listed.items() if n >= 1 and j in claims}),
        "duplicated": sum(n - 1 for n in listed.values() if n > 1),
    }


if __name__ == "__main__":
    main()
