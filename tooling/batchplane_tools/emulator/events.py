"""The "Batch Job State Change" and "Batch Job Queue Blocked" events: handed to their callbacks by
one thread of their own."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


STATE_CHANGE = "Batch Job State Change"
QUEUE_BLOCKED = "Batch Job Queue Blocked"

Emit = Callable[[dict[str, Any]], None]


class EventPump:
    """Calls `emit` with each state change's detail and `emit_blocked` with each queue-blocked one, in
    the order they happened, on one thread: the scheduler never waits for them, and a failing call is
    logged, never raised."""

    def __init__(self, emit: Emit, emit_blocked: Emit | None = None) -> None:
        self._emit = {STATE_CHANGE: emit, QUEUE_BLOCKED: emit_blocked}
        self._outbox: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, detail: dict[str, Any]) -> None:
        self._outbox.put((STATE_CHANGE, detail))

    def put_blocked(self, detail: dict[str, Any]) -> None:
        self._outbox.put((QUEUE_BLOCKED, detail))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="batch-emulator-events", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Emits what is queued already, then ends the thread."""
        self._outbox.put(None)
        thread = self._thread
        if (
            thread is not None and threading.current_thread() is not thread
        ):  # emit may stop the emulator itself
            thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            entry = self._outbox.get()
            if entry is None:
                return
            detail_type, detail = entry
            emit = self._emit[detail_type]
            if emit is None:
                continue
            try:
                emit(detail)
            except Exception:
                logger.exception(
                    "batch emulator: %s failed for job %s (%s)",
                    detail_type,
                    detail.get("jobId"),
                    detail.get("status"),
                )
