"""Bulk cancel and bulk retry, priced: the real API handler on in-process moto makes N jobs, then
counts them (dry run), cancels them and retries them by filter, page by page under an
Idempotency-Key, and every billable request is priced as bench/cost.py prices it (every DynamoDB
write by AWS's rules: item size in 1 KB steps, transactions x2, each index by its projection).

Prints, per operation: the API calls it took, DynamoDB write and read units per job (by item), and
dollars per million jobs by service. The jobs are QUEUED (no Batch job yet): a cancel then asks
Batch for the attempt by name (ListJobs) instead of a TerminateJob; both are free.

    .venv/bin/python bench/bulk.py [--jobs 300] [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import defaultdict
from typing import Any

from cost import SERVICE_ROWS, Ledger, LogTap, Meter, Runner
from harness import moto_stack
from pricing import table_from_properties, usd

from batchplane_tools.fixtures import post_job


def bulk_call(run: Runner, action: str, body: dict[str, Any], key: str | None) -> dict[str, Any]:
    """One POST /bulk/<action> through the API handler, as API Gateway hands it over."""
    event = post_job(ingest_bucket=run.env["INGEST_BUCKET"])
    path = f"/bulk/{action}"
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = path
    event["requestContext"]["path"] = f"/v1{path}"
    event["body"] = json.dumps(body)
    headers = {k: v for k, v in event["headers"].items() if k not in ("Idempotency-Key", "Content-Length")}
    headers["Content-Length"] = str(len(event["body"].encode()))
    if key is not None:
        headers["Idempotency-Key"] = key
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    response = run.invoke("api", event, f"api POST {path}", trigger="api")
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])  # type: ignore[no-any-return]


def operation(run: Runner, action: str, body: dict[str, Any], key: str | None) -> tuple[Ledger, int, int]:
    """Every call of one operation, following next_token: its ledger, calls and jobs it took."""
    run.meter.ledger = Ledger()
    calls, taken, token = 0, 0, None
    while True:
        answer = bulk_call(run, action, {**body, **({"next_token": token} if token else {})}, key)
        calls += 1
        taken += len(answer["jobs"])
        token = answer["next_token"]
        if not token:
            break
    ledger = run.meter.ledger
    run.meter.ledger = None
    return ledger, calls, taken


def report(title: str, ledger: Ledger, calls: int, jobs: int) -> None:
    print(f"\n{title}: {calls} API call(s), {jobs} jobs")
    writes: dict[str, float] = defaultdict(float)
    reads: dict[str, float] = defaultdict(float)
    for charge in ledger.charges:
        if charge.price == "dynamodb_wru":
            writes[f"{charge.what} {charge.item} ({charge.target})"] += charge.units
        elif charge.price == "dynamodb_rru":
            reads[f"{charge.what} {charge.item or charge.target}"] += charge.units
    total_wru = sum(writes.values())
    print(f"  DynamoDB WRU: {total_wru:g} in all, {total_wru / jobs:.2f} a job")
    for what, units in sorted(writes.items(), key=lambda kv: -kv[1]):
        print(f"    {what:<58}{units:9g}  {units / jobs:6.2f} a job")
    total_rru = sum(reads.values())
    print(f"  DynamoDB RRU: {total_rru:g} in all, {total_rru / jobs:.2f} a job")
    print(f"  {'service':<24}{'$ per M jobs':>13}")
    total = 0.0
    for service, prices in SERVICE_ROWS.items():
        dollars = ledger.usd(prices) / jobs * 1e6
        total += dollars
        if dollars:
            print(f"  {service:<24}{dollars:13.2f}")
    print(f"  {'total':<24}{total:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--jobs", type=int, default=300, help="jobs made, then counted, cancelled and retried"
    )
    parser.add_argument("--limit", type=int, default=100, help="jobs a call takes (the API's most: 100)")
    args = parser.parse_args()

    out = sys.stdout
    tap = LogTap(out)
    sys.stdout = tap  # before batchplane's Logger is made, as bench/cost.py does
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    try:
        with moto_stack() as (session, stack):
            table = table_from_properties(stack.template["Resources"]["JobsTable"]["Properties"])
            meter = Meter(session, {stack.refs["JobsTable"]: table})
            meter.install()
            run = Runner(session, stack, meter, tap)
            run.meter.ledger = Ledger()  # making the jobs: not counted
            for n in range(args.jobs):
                run.post_job(n)
            only = {"filter": {"job_type": "word-count"}}
            results = [
                ("Dry run of a bulk cancel", *operation(run, "cancel", {**only, "dry_run": True}, None)),
                ("Bulk cancel", *operation(run, "cancel", {**only, "limit": args.limit}, "bench-cancel")),
                (
                    "Bulk cancel again, the same key (answered from the record)",
                    *operation(run, "cancel", {**only, "limit": args.limit}, "bench-cancel"),
                ),
                ("Bulk retry", *operation(run, "retry", {**only, "limit": args.limit}, "bench-retry")),
            ]
    finally:
        sys.stdout = out
    print(
        f"batchplane bulk operations on in-process moto: {args.jobs} QUEUED word-count jobs, "
        f"{args.limit} a call"
    )
    print(f"(an API call is ${usd('apigw_rest', 1) * 1e6:.2f} per million)")
    for title, ledger, calls, taken in results:
        report(title, ledger, calls, taken or args.jobs)


if __name__ == "__main__":
    main()
