"""S3's object-created notifications with what S3 puts in them and moto leaves out, for the local stack.

moto's notifications carry neither the object's `versionId` nor a `sequencer`. Without them, file drop
could only pin a dropped object by its ETag (an overwrite before the job runs would end it as
INPUT_CHANGED, where AWS's versioned ingest bucket lets it read its version) and could not order a
key's events. This adds both, as S3 sends them: the version id of an object in a versioned bucket
(none otherwise), and a hex sequencer that grows with every event, its left-most digits a timestamp.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

# S3's sequencers are 16-20 hex digits; AWS's sample is 18 ("0055AED6DCD90281E5").
SEQUENCER_DIGITS = 18


class Sequencer:
    """Hex sequencers in the order they are handed out: nanoseconds since the epoch, or one more than
    the last when the clock has not moved on (or went back)."""

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self._last = max(self._clock(), self._last + 1)
            return f"{self._last:0{SEQUENCER_DIGITS}X}"


def add_versions_and_sequencers(sequencer: Callable[[], str] | None = None) -> None:
    """Every S3 notification moto sends from now on carries the object's versionId (versioned buckets)
    and a sequencer. Applying it again changes nothing."""
    from moto.s3 import notifications

    make_event = notifications._get_s3_event
    if getattr(make_event, "adds_versions", False):
        return
    next_sequencer = sequencer or Sequencer()

    @functools.wraps(make_event)
    def with_version_and_sequencer(
        event_name: str, bucket: Any, key: Any, notification_id: str
    ) -> dict[str, list[dict[str, Any]]]:
        event: dict[str, list[dict[str, Any]]] = make_event(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            obj = record["s3"]["object"]
            if key.version_id != "null":  # moto's (and S3's) id of an object in an unversioned bucket
                obj["versionId"] = key.version_id
            obj["sequencer"] = next_sequencer()
        return event

    with_version_and_sequencer.adds_versions = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_and_sequencer
