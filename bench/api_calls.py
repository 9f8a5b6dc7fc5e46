"""AWS API calls the handlers make for one accepted job, from POST /jobs to SUBMITTED.

Runs the real API and dispatcher handlers against template.yaml's resources on in-process moto and
counts, with a botocore event hook on the handlers' own clients, every call they make. The SQS poll
that Lambda's event source mapping does is the harness's, and is not counted (Lambda does it, not us).

    python bench/api_calls.py
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    import boto3
    from moto import mock_aws

    from batchplane.adapters.clients import client
    from batchplane.local.functions import LambdaContext, load_function
    from batchplane.local.template import provision

    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.session.Session()
        stack = provision(ROOT / "template.yaml", session, stack_name="batchplane-bench")
        os.environ.update(stack.function_environment())
        os.environ["POLICY_PATH"] = str(ROOT / "layers" / "core" / "policy.yaml")

        calls: list[str] = []
        for service in ("dynamodb", "sqs", "batch", "s3", "sns", "events"):

            def hook(model: Any, service: str = service, **_: Any) -> None:
                calls.append(f"{service}:{model.name}")

            client(service).meta.events.register("before-parameter-build", hook)

        event = json.loads((ROOT / "events" / "api" / "post_job.json").read_text())
        response = load_function("api").handler(event, LambdaContext())
        assert response["statusCode"] == 202, response
        job_id = json.loads(response["body"])["job_id"]
        api_calls = len(calls)

        sqs = session.client("sqs")
        [message] = sqs.receive_message(QueueUrl=stack.refs["DispatchQueue"], AttributeNames=["All"])[
            "Messages"
        ]
        record = json.loads((ROOT / "events" / "sqs" / "dispatch.json").read_text())["Records"][0]
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
