"""The sample events under events/, in AWS's documented shapes, for the tests and the benches."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from batchplane_tools.paths import EVENTS_DIR


@cache
def _event_text(name: str) -> str:
    return (EVENTS_DIR / name).read_text(encoding="utf-8")


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of a fixture from events/ (e.g. "api/post_job.json")."""
    event: dict[str, Any] = json.loads(_event_text(name))
    return event


def s3_notification(fixture: str = "object_created", *, bucket: str, **object_fields: Any) -> dict[str, Any]:
    """events/s3/<fixture>.json with every record's bucket set (and the first record's object fields)."""
    event = load_event(f"s3/{fixture}.json")
    for record in event["Records"]:
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    event["Records"][0]["s3"]["object"].update(object_fields)
    return event


def post_job(*, ingest_bucket: str) -> dict[str, Any]:
    """events/api/post_job.json with its input in `ingest_bucket` (the same key, under the caller's
    own prefix), and the Content-Length and payload hash of the new body."""
    event = load_event("api/post_job.json")
    body = json.loads(event["body"])
    key = body["parameters"]["input"].removeprefix("s3://").partition("/")[2]
    body["parameters"]["input"] = f"s3://{ingest_bucket}/{key}"
    text = json.dumps(body)
    event["body"] = text
    for name, value in (
        ("Content-Length", str(len(text.encode()))),
        ("x-amz-content-sha256", hashlib.sha256(text.encode()).hexdigest()),
    ):
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return event
