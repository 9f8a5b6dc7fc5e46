"""AWS API calls the handlers make for one accepted job, from POST /jobs to SUBMITTED.

Runs the real API and dispatcher handlers against template.yaml's resources on in-process moto and
counts, with a botocore event hook on the handlers' own clients, every call they make. The SQS poll
that Lambda's event source mapping does is the harness's, and is not counted (Lambda does it, not us).

    python bench/api_calls.py
"""

from __future__ import annotations

import json
from collections import Counter

from harness import count_calls, moto_stack

from batchplane_tools.fixtures import load_event, post_job


def main() -> None:
    from batchplane_tools.functions import LambdaContext, load_function

    with moto_stack() as (session, stack):
        calls = count_calls()

        event = post_job(ingest_bucket=stack.function_environment()["INGEST_BUCKET"])
        response = load_function("api").handler(event, LambdaContext())
        assert response["statusCode"] == 202, response
        job_id = json.loads(response["body"])["job_id"]
        api_calls = len(calls)

        sqs = session.client("sqs")
        [message] = sqs.receive_message(QueueUrl=stack.refs["DispatchQueue"], AttributeNames=["All"])[
            "Messages"
        ]
        record = load_event("sqs/dispatch.json")["Records"][0]
        record.update(messageId=message["MessageId"], body=message["Body"])
        result = load_function("dispatcher").handler({"Records": [record]}, LambdaContext())
        assert result == {"batchItemFailures": []}, result

        item = session.client("dynamodb").get_item(
            TableName=stack.refs["JobsTable"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
        )["Item"]
        assert item["status"]["S"] == "SUBMITTED"

    reads = [c for c in calls if c.split(":")[1] in ("GetItem", "Query", "Scan", "BatchGetItem", "ListJobs")]
    print("one accepted job, POST /jobs -> SUBMITTED")
    print(f"  API function:        {api_calls} calls  {calls[:api_calls]}")
    print(f"  dispatcher function: {len(calls) - api_calls} calls  {calls[api_calls:]}")
    print(f"  total: {len(calls)} calls (target <= 4), reads on the path: {len(reads)} (target 0)")
    for name, count in sorted(Counter(calls).items()):
        print(f"    {name:<32} {count}")


if __name__ == "__main__":
    main()
