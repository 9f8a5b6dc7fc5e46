"""What the benchmarks share: template.yaml's resources on in-process moto, with the functions'
environment set as the template sets it, and a counter of the AWS calls the handlers make."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("dynamodb", "sqs", "batch", "s3", "sns", "events")


@contextmanager
def moto_stack(policy: Path = ROOT / "layers" / "core" / "policy.yaml") -> Iterator[tuple[Any, Any]]:
    """(boto3 session, provisioned Stack) on in-process moto; logs and metrics kept quiet."""
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

    from batchplane_tools.local.moto_speedups import keep_moto_fast
    from batchplane_tools.local.template import provision

    with mock_aws(config={"batch": {"use_docker": False}}):
        session = boto3.session.Session()
        stack = provision(ROOT / "template.yaml", session, stack_name="batchplane-bench")
        keep_moto_fast()
        os.environ.update(stack.function_environment())
        os.environ["POLICY_PATH"] = str(policy)
        yield session, stack


def sqs_record(body: str, *, source_arn: str, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    """One SQS record as Lambda's event source mapping delivers it, shaped as events/sqs/dispatch.json."""
    from batchplane_tools.fixtures import load_event

    record: dict[str, Any] = load_event("sqs/dispatch.json")["Records"][0]
    record.update(messageId=message_id, body=body, eventSourceARN=source_arn, messageAttributes={})
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    for stale in ("md5OfBody", "md5OfMessageAttributes"):
        record.pop(stale, None)
    return record


def object_created(bucket: str, key: str, n: int) -> str:
    """An S3 notification (events/s3/object_created.json) of the n-th object of a burst, as the ingest
    queue's message body: its key URL-encoded as S3 sends it, its own version, sequencer and ETag."""
    import json
    from urllib.parse import quote_plus

    from batchplane_tools.fixtures import load_event

    record = load_event("s3/object_created.json")["Records"][0]
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"].update(
        key=quote_plus(key, safe="/"),
        versionId=f"v{n}",
        sequencer=f"{0x6929C6C8A1B2C3D4 + n:018X}",
        eTag=f"{n:032x}",
    )
    return json.dumps({"Records": [record]})


def count_calls(services: tuple[str, ...] = SERVICES) -> list[str]:
    """Every call the handlers' own clients make from now on, as "service:Operation"."""
    from batchplane.adapters.clients import client

    calls: list[str] = []
    for service in services:

        def hook(model: Any, service: str = service, **_: Any) -> None:
            calls.append(f"{service}:{model.name}")

        client(service).meta.events.register("before-parameter-build", hook)
    return calls
