"""The sample events under events/, in AWS's documented shapes, for the tests and the benches."""

from __future__ import annotations

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
