"""The API's job statuses, in the domain's order, and which of them are final.

The CLI keeps its own copy: importing `batchplane.models` would load pydantic, ~110 ms a command. A
unit test holds it equal to the domain's.
"""

from __future__ import annotations

STATUSES = (
    "HELD",
    "QUEUED",
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "RETRY_WAIT",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
)
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
