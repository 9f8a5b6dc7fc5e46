"""Test support: real-shaped events from events/, the function handlers, and a provisioned stack."""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from batchplane.adapters.clients import reset_clients
from batchplane.settings import get_settings
from batchplane.wiring import page_token_key, ports
from batchplane_tools.fixtures import load_event, s3_notification
from batchplane_tools.functions import LambdaContext, load_function

__all__ = ["LambdaContext", "api_event", "load_event", "load_function", "s3_notification", "sqs_event"]

ROOT = Path(__file__).resolve().parents[1]
POLICY_PATH = ROOT / "layers" / "core" / "policy.yaml"
TEMPLATE = ROOT / "template.yaml"
# The `aws` fixture's ingest bucket (template.yaml names it <stack>-ingest-<account>-<region>).
INGEST_BUCKET = "batchplane-test-ingest-123456789012-us-east-1"

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], *, timeout: float = 60.0, every: float = 0.2, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}; last: {last!r}")


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clear_caches() -> None:
    """Forget the handlers' settings, ports and boto3 clients, so the next call sees the environment."""
    get_settings.cache_clear()
    ports.cache_clear()
    page_token_key.cache_clear()
    reset_clients()


def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    tenant: str = "analytics",
    resource: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (IAM auth) built from events/api/post_job.json."""
    event = load_event("api/post_job.json")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["resource"] = event["requestContext"]["resourcePath"] = resource or path
    event["requestContext"]["path"] = f"/v1{path}"
    base = {k: v for k, v in event["headers"].items() if k not in ("Idempotency-Key", "Content-Length")}
    base.update(headers or {})
    event["headers"] = base
    event["multiValueHeaders"] = {k: [v] for k, v in base.items()}
    event["queryStringParameters"] = query or None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    if body is None:
        event["body"] = None
    else:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    identity = event["requestContext"]["identity"]
    identity["userArn"] = f"arn:aws:sts::123456789012:assumed-role/{tenant}/alice"
    identity["caller"] = identity["user"] = f"AROAEXAMPLE{tenant.upper()}:alice"
    if query:
        event["requestContext"]["path"] += "?" + urlencode(query)
    return event


def tenant_input(name: str, tenant: str = "analytics", bucket: str = INGEST_BUCKET) -> str:
    """An input URI under the tenant's own prefix of the ingest bucket, where the policy lets it read."""
    return f"s3://{bucket}/incoming/{tenant}/{name}"


def sqs_event(bodies: list[tuple[str, str, int]]) -> dict[str, Any]:
    """An SQS event from (message id, body, receive count) triples, shaped as events/sqs/dispatch.json."""
    template = load_event("sqs/dispatch.json")["Records"][0]
    records = []
    for message_id, body, receive_count in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = message_id
        record["body"] = body
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        record.pop("md5OfBody", None)
        records.append(record)
    return {"Records": records}


def batch_event(fixture: str, *, job: dict[str, Any] | Any, attempt: int = 0) -> dict[str, Any]:
    """An EventBridge "Batch Job State Change" from events/batch/<fixture>.json, re-aimed at an attempt.

    `job` is the job as the API returns it (or a domain Job); `attempt` is its number (default: the
    last). The Batch job id, name, queue and tags become the attempt's, the rest stays AWS's.
    """
    data = job if isinstance(job, dict) else job.model_dump(mode="json")
    recorded = data["attempts"][attempt - 1] if attempt else data["attempts"][-1]
    event = load_event(f"batch/{fixture}.json")
    detail = event["detail"]
    batch_job_id = recorded["batch_job_id"]
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{batch_job_id}"
    detail.update(
        jobId=batch_job_id,
        jobArn=arn,
        jobName=recorded["job_name"]
        if "job_name" in recorded
        else f"bp-{data['job_id']}-{recorded['number']}",
        jobQueue=recorded["queue"],
    )
    detail["tags"] = {
        "resourceArn": arn,
        "bp:job_id": data["job_id"],
        "bp:attempt": str(recorded["number"]),
        "bp:tenant": data["tenant"],
        "bp:job_type": data["job_type"],
    }
    event["resources"] = [arn]
    return event


def submit_job(api: Any, job_type: str, input_uri: str, **fields: Any) -> dict[str, Any]:
    """POST /jobs through the API handler (the `api` fixture); asserts 202 and returns the job."""
    status, job, _ = api(
        api_event(
            "POST",
            "/jobs",
            body={"job_type": job_type, "parameters": {"input": input_uri}, **fields},
            headers={"Content-Type": "application/json"},
        )
    )
    assert status == 202, job
    return job  # type: ignore[no-any-return]


def get_job(api: Any, job_id: str) -> dict[str, Any]:
    """GET /jobs/{job_id} through the API handler; returns the body."""
    return api(api_event("GET", f"/jobs/{job_id}", resource="/jobs/{job_id}"))[1]  # type: ignore[no-any-return]


def watch_queues(session: Any, *, topic_arn: str, bus: str, name: str) -> tuple[str, str]:
    """Two SQS queues, as an operator and a program would have: one subscribed to the alert topic,
    one the target of a rule taking every batchplane event on the job bus. Their URLs."""
    sqs, sns, events = session.client("sqs"), session.client("sns"), session.client("events")
    alerts = sqs.create_queue(QueueName=f"{name}-alerts")["QueueUrl"]
    job_events = sqs.create_queue(QueueName=f"{name}-job-events")["QueueUrl"]

    def arn(url: str) -> str:
        return str(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn(alerts))
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["batchplane"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn(job_events)}])
    return alerts, job_events


class BreaksOnce:
    """A response body whose second read fails as a reset connection does."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._reads = 0

    def read(self, amount: int) -> bytes:
        from botocore.exceptions import ResponseStreamingError

        self._reads += 1
        if self._reads == 2:
            raise ResponseStreamingError(error="Connection reset by peer")
        data: bytes = self._body.read(amount)
        return data

    def close(self) -> None:
        self._body.close()


def emulator_client(endpoint_url: str) -> Any:
    """boto3's batch client on the local Batch emulator; one attempt a call, so a refusal shows as is."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "batch",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
