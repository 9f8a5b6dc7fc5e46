"""The state-change path: AWS calls per event, and events handled per second against in-process moto.

1. Calls per non-terminal event (target: one DynamoDB write, no read) and per full retry cycle
   (terminal event -> decision -> dispatch -> SubmitJob), counted with a botocore hook on the
   handlers' own clients.
2. Throughput: N jobs' RUNNABLE/STARTING/RUNNING events through the real state-change handler,
   beside the bare minimum (one UpdateItem per event on the same table, same client) in the same run.

    python bench/state_events.py [--jobs 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections import Counter
from typing import Any

from harness import count_calls, moto_stack

from batchplane_tools.fixtures import load_event


def fixture(name: str) -> dict[str, Any]:
    return load_event(f"batch/{name}.json")


def aimed(name: str, job: Any) -> dict[str, Any]:
    attempt = job.attempts[-1]
    event = fixture(name)
    event["detail"].update(
        jobId=attempt.batch_job_id,
        jobName=attempt.job_name,
        jobQueue=attempt.queue,
        tags={"bp:tenant": job.tenant, "bp:job_type": job.job_type},
    )
    return event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    from batchplane.adapters.clients import client
    from batchplane.models.dispatch import DispatchMessage
    from batchplane.models.request import JobRequest
    from batchplane.service import jobs
    from batchplane.service.dispatch import dispatch
    from batchplane.wiring import ports
    from batchplane_tools.functions import LambdaContext, load_function

    with moto_stack() as (_, stack):
        p = ports()
        state_change = load_function("state_change").handler
        context = LambdaContext()

        class Collect:
            def __init__(self) -> None:
                self.messages: list[tuple[DispatchMessage, int]] = []

            def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
                p_send(message, delay_seconds)
                self.messages.append((message, delay_seconds))

        p_send = p.dispatch.send
        collected = Collect()
        p.dispatch = collected

        def new_job(n: int = 0) -> Any:
            tenant = f"bench-{n % 20}"  # sort-large allows 100 in flight per tenant
            request = JobRequest(
                tenant=tenant, job_type="sort-large", parameters={"input": "s3://b-1/in.csv"}
            )
            job = jobs.submit(p, request).job
            message, _ = collected.messages.pop()
            dispatch(p, message)
            return p.store.get(job.job_id)

        calls = count_calls()

        # 1. calls per event
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            job = new_job()
            calls.clear()
            state_change(aimed("running", job), context)
            per_progress = list(calls)
            calls.clear()
            state_change(aimed("spot_interrupted", job), context)
            message, _ = collected.messages.pop()
            dispatch(p, message)
            per_retry = list(calls)

        # 2. throughput
        captured: list[dict[str, Any]] = []

        def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "UpdateItem":
                captured.append(dict(params))

        client("dynamodb").meta.events.register("before-parameter-build", capture)
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            state_change(aimed("runnable", new_job(999)), context)
        client("dynamodb").meta.events.unregister("before-parameter-build", capture)
        progress_call = captured[-1]

        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            many = [new_job(n) for n in range(args.jobs)]
        events = [aimed(name, j) for j in many for name in ("runnable", "starting", "running")]
        calls.clear()
        # Log lines and EMF metrics go to stdout as in Lambda; here into the void, not the terminal.
        with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
            started = time.perf_counter()
            for event in events:
                state_change(event, context)
            handler_seconds = time.perf_counter() - started
        assert Counter(calls) == Counter({"dynamodb:UpdateItem": len(events)}), Counter(calls)

        dynamodb = client("dynamodb")
        table = stack.refs["JobsTable"]
        started = time.perf_counter()
        for j in many:
            for status in ("RUNNABLE", "STARTING", "RUNNING"):
                dynamodb.update_item(
                    TableName=table,
                    Key={"pk": {"S": f"JOB#{j.job_id}"}, "sk": {"S": "JOB"}},
                    UpdateExpression="SET #s = :s",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": status}},
                )
        bare_seconds = time.perf_counter() - started

        # The handler's own conditional UpdateItem, issued directly: what is left is batchplane's cost.
        # And the smallest write that still records an event correctly (attempt status and rank, job
        # status; the same condition): the ceiling moto allows.
        smallest = "SET #attempts.#n.#a_status = :a_status, #attempts.#n.#rank = :rank, #status = :status"

        def replayed(update: str | None = None) -> list[dict[str, Any]]:
            with open(os.devnull, "w") as void, contextlib.redirect_stdout(void):
                fresh = [new_job(n) for n in range(args.jobs)]
            out = []
            for j in fresh:
                for status, rank in (("RUNNABLE", "3"), ("STARTING", "4"), ("RUNNING", "5")):
                    params = json.loads(json.dumps(progress_call))
                    params["Key"] = {"pk": {"S": f"JOB#{j.job_id}"}, "sk": {"S": "JOB"}}
                    values = params["ExpressionAttributeValues"]
                    values[":bid"] = {"S": j.attempts[-1].batch_job_id}
                    values[":a_status"] = values[":status"] = {"S": status}
                    values[":rank"] = {"N": rank}
                    if update is not None:
                        used = f"{update} {params['ConditionExpression']}"
                        params["UpdateExpression"] = update
                        params["ExpressionAttributeNames"] = {
                            k: v for k, v in params["ExpressionAttributeNames"].items() if k in used
                        }
                        params["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in used}
                    out.append(params)
            return out

        def rate(calls: list[dict[str, Any]]) -> float:
            started = time.perf_counter()
            for params in calls:
                dynamodb.update_item(**params)
            return len(calls) / (time.perf_counter() - started)

        replays = replayed()
        same_rate = rate(replays)
        smallest_rate = rate(replayed(smallest))

    print("state-change path, against in-process moto")
    print(f"  non-terminal event: {len(per_progress)} call(s) {per_progress} (target: one write, no read)")
    print(f"  full retry cycle:   {len(per_retry)} calls {per_retry}")
    handler_rate, bare_rate = len(events) / handler_seconds, len(events) / bare_seconds
    print(f"  {len(events)} events through the handler:             {handler_rate:8.1f} events/s")
    print(f"  {len(events)} bare UpdateItem calls (SET status):      {bare_rate:8.1f} calls/s")
    print(f"  {len(replays)} of the handler's own UpdateItem, direct: {same_rate:8.1f} calls/s")
    print(f"  {len(replays)} of the smallest correct UpdateItem, direct: {smallest_rate:5.1f} calls/s")
    print(f"  handler / bare UpdateItem:           {handler_rate / bare_rate:.2f} (target >= 0.70)")
    print(
        f"  handler / its own UpdateItem direct: {handler_rate / same_rate:.2f} (batchplane's own overhead)"
    )
    print(
        f"  smallest correct UpdateItem / bare:  {smallest_rate / bare_rate:.2f} "
        "(the ceiling of the first ratio in moto, whatever the handler does)"
    )


if __name__ == "__main__":
    main()
