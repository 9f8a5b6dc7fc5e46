"""Read-change-write under a version guard, tried again when another writer came first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from batchplane.errors import ConcurrentUpdate

T = TypeVar("T")

# Two writers racing for one job is rare (a duplicate event, a cancel during a decision); three
# tries leave room for one more writer without looping on a hot item.
TRIES = 3


def retry_on_conflict(once: Callable[[], T], *, tries: int = TRIES) -> T:
    """`once()` reads, decides and writes; on ConcurrentUpdate it runs again on a fresh read.

    The last try's ConcurrentUpdate propagates: the caller's trigger (SQS, EventBridge, the API
    client) tries later, when the item has settled.
    """
    for _ in range(tries - 1):
        try:
            return once()
        except ConcurrentUpdate:
            continue
    return once()
