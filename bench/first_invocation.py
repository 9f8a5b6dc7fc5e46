"""Cold start past the import: each function's first invocation, against its second.

The import is what bench/cold_start.py measures. What a cold start pays after it happens inside the
first invocation: creating each client the function uses, loading the policy, building the models
it uses (and importing boto3, which is not measured here).
Each function runs here in a fresh interpreter on template.yaml's resources on in-process moto
(moto's own work is in both calls), is invoked with its fixture from events/, then with the same
event again. The difference is what the first request of a new instance costs on top of a warm one.
moto imports boto3 before the function loads, so boto3's import is in neither figure here.

    python bench/first_invocation.py [--runs 5]
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from harness import moto_stack

from batchplane_tools.fixtures import load_event, post_job, s3_notification
from batchplane_tools.functions import function_names

FUNCTIONS = function_names()


def event_for(function: str, session: Any, stack: Any) -> dict[str, Any]:
    """The function's fixture, aimed at this stack where it names a resource."""
    if function == "api":
        return post_job(ingest_bucket=stack.function_environment()["INGEST_BUCKET"])
    if function == "dispatcher":
        return load_event("sqs/dispatch.json")
    if function == "state_change":
        return load_event("batch/running.json")
    if function == "sweeper":
        return load_event("schedule/sweep.json")
    if function == "outbox":  # a give-up's write: one alert and one job event published
        return load_event("dynamodb/job_outbox.json")
    bucket = stack.function_environment()["INGEST_BUCKET"]
    key = "incoming/analytics/word-count/notes.txt"
    put = session.client("s3").put_object(Bucket=bucket, Key=key, Body=b"some words\n")
    return s3_notification(
        bucket=bucket, key=key, size=11, eTag=put["ETag"].strip('"'), versionId=put.get("VersionId")
    )


def outcome(result: Any) -> str:
    """What the first call answered: the API's status, or the records an SQS batch failed."""
    if isinstance(result, dict) and "statusCode" in result:
        return f"HTTP {result['statusCode']}"
    if isinstance(result, dict) and "batchItemFailures" in result:
        return f"{len(result['batchItemFailures'])} failed records"
    return "returned"


def child(function: str) -> None:
    """One fresh instance: import, first call, second call; prints one JSON line."""
    from batchplane_tools.functions import LambdaContext, load_function

    with moto_stack() as (session, stack):
        event = event_for(function, session, stack)
        # moto's heap (the provisioned stack) is not the function's: keep the collector off it, or a
        # full collection that scans it lands in whichever call happens to trigger it.
        gc.collect()
        gc.freeze()
        started = time.perf_counter()
        module = load_function(function)
        imported = time.perf_counter()
        result = module.handler(copy.deepcopy(event), LambdaContext())
        first = time.perf_counter()
        from batchplane.adapters.clients import made_clients

        made = len(made_clients())
        module.handler(copy.deepcopy(event), LambdaContext())
        second = time.perf_counter()
    print(
        json.dumps(
            {
                "import": (imported - started) * 1000,
                "first": (first - imported) * 1000,
                "second": (second - first) * 1000,
                "clients": made,
                "result": outcome(result),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=FUNCTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"python {sys.version.split()[0]}, in-process moto, median of {args.runs} fresh interpreters (ms)")
    print(
        f"{'function':<14}{'import':>9}{'1st call':>10}{'2nd call':>10}{'1st - 2nd':>11}"
        "   clients made, 1st call's answer"
    )
    for function in FUNCTIONS:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--child", function],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.splitlines()[-1]
            )
            for _ in range(args.runs)
        ]

        def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        print(
            f"{function:<14}{median('import'):9.1f}{median('first'):10.1f}{median('second'):10.1f}"
            f"{median('first') - median('second'):11.1f}   {int(median('clients'))}, "
            + " / ".join(sorted({run["result"] for run in runs}))
        )


if __name__ == "__main__":
    main()
