"""A burst of object-created records through the file-drop function, against in-process moto.

Figures: jobs created (exactly N, with the whole burst delivered twice), AWS calls per object on the
ingest path (target <= 2), wall time per 1,000 objects, and the peak SubmitJob rate the dispatchers
reach against the configured limit (each simulated dispatcher instance paces itself, as each Lambda
instance does; reserved concurrency x rate is the limit).

    python bench/ingest_burst.py [--objects 10000] [--dispatch 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import ROOT, count_calls, moto_stack, object_created

from batchplane_tools.fixtures import load_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--dispatch", type=int, default=1_000, help="how many of the jobs to dispatch")
    parser.add_argument("--instances", type=int, default=5, help="dispatcher reserved concurrency")
    parser.add_argument("--rate", type=float, default=8.0, help="SubmitJob calls/s per dispatcher instance")
    args = parser.parse_args()
    import yaml

    from batchplane.adapters.batch import BatchGateway, RateLimiter
    from batchplane.adapters.clients import client
    from batchplane.models.dispatch import DispatchMessage
    from batchplane.service.dispatch import dispatch
    from batchplane.wiring import ports
    from batchplane_tools.functions import LambdaContext, load_function

    # The example policy lets a tenant have 500 word-count jobs in flight; a 10,000-file burst of
    # one tenant needs room for all of them (otherwise the rest wait in the ingest queue).
    policy = yaml.safe_load((ROOT / "layers" / "core" / "policy.yaml").read_text())
    policy["job_types"]["word-count"]["admission"]["max_in_flight_per_tenant"] = args.objects + 1
    policy_path = Path("/tmp/batchplane-bench-policy.yaml")
    policy_path.write_text(yaml.safe_dump(policy))

    with moto_stack(policy_path) as (session, stack):
        bucket = os.environ["INGEST_BUCKET"]
        handler = load_function("file_drop").handler
        sqs_record = load_event("sqs/dispatch.json")["Records"][0]

        def notification(i: int) -> str:
            return object_created(bucket, f"incoming/analytics/word-count/burst/file {i:05d} ü.txt", i)

        bodies = [notification(i) for i in range(args.objects)]
        calls = count_calls(("dynamodb", "sqs", "s3", "batch"))

        def deliver_all() -> float:
            started = time.perf_counter()
            for start in range(0, len(bodies), 10):
                records = []
                for n, body in enumerate(bodies[start : start + 10]):
                    record = dict(sqs_record, messageId=f"m{start + n}", body=body)
                    records.append(record)
                with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
                    result = handler({"Records": records}, LambdaContext())
                assert result == {"batchItemFailures": []}, result
            return time.perf_counter() - started

        first_seconds = deliver_all()
        first_calls = Counter(calls)
        calls.clear()
        second_seconds = deliver_all()
        second_calls = Counter(calls)

        dynamodb = session.client("dynamodb")
        jobs = 0
        paginator = dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=stack.refs["JobsTable"],
            # The job item only: a job also has its INDEX item (and more) under the same pk.
            FilterExpression="begins_with(pk, :job) AND sk = :item",
            ExpressionAttributeValues={":job": {"S": "JOB#"}, ":item": {"S": "JOB"}},
            Select="COUNT",
        ):
            jobs += page["Count"]

        # Dispatch a slice of the burst with `instances` paced dispatchers in parallel.
        sqs = session.client("sqs")
        messages: list[DispatchMessage] = []
        while len(messages) < args.dispatch:
            batch = sqs.receive_message(QueueUrl=stack.refs["DispatchQueue"], MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                break
            messages.extend(DispatchMessage.model_validate_json(m["Body"]) for m in batch)
        messages = messages[: args.dispatch]
        p = ports()
        stamps: list[float] = []
        lock = threading.Lock()

        def stamp(**_: Any) -> None:
            # When the request leaves for Batch, after the instance's pacing: the rate Batch sees.
            with lock:
                stamps.append(time.perf_counter())

        client("batch").meta.events.register("before-send.batch.SubmitJob", stamp)

        def instance(share: list[DispatchMessage]) -> None:
            gateway = BatchGateway(client("batch"), RateLimiter(args.rate))
            local = type(p)(**{**p.__dict__, "batch": gateway})
            for message in share:
                dispatch(local, message)

        threads = [
            threading.Thread(target=instance, args=(messages[i :: args.instances],))
            for i in range(args.instances)
        ]
        started = time.perf_counter()
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        dispatch_seconds = time.perf_counter() - started
        stamps.sort()
        peak = (
            max(sum(1 for s in stamps[i:] if s - start < 1.0) for i, start in enumerate(stamps))
            if stamps
            else 0
        )

    per_object = {k: v / args.objects for k, v in first_calls.items()}
    print(f"burst of {args.objects} object-created records through the file-drop handler (in-process moto)")
    print(f"  jobs created after the burst was delivered twice: {jobs} (must be {args.objects})")
    print(
        f"  AWS calls per object, first delivery: {sum(first_calls.values()) / args.objects:.2f} {per_object}"
    )
    print(
        f"  AWS calls per object, redelivery:     {sum(second_calls.values()) / args.objects:.2f} "
        f"{dict(second_calls)}"
    )
    print(
        f"  wall time per 1,000 objects: {first_seconds / args.objects * 1000:.1f} s (first), "
        f"{second_seconds / args.objects * 1000:.1f} s (duplicates)"
    )
    print(
        f"  dispatch of {len(messages)} jobs by {args.instances} instances at {args.rate}/s each "
        f"(limit {args.instances * args.rate:.0f}/s, Batch allows 50/s): {dispatch_seconds:.1f} s, "
        f"mean {len(stamps) / dispatch_seconds:.1f}/s, peak {peak} SubmitJob calls in any 1 s"
    )


if __name__ == "__main__":
    main()
