"""The "Batch Job State Change" events: handed to `emit` by one thread of their own."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class EventPump:
    """Calls `emit` with each event detail, in the order the transitions happened, on one thread: the
    scheduler never waits for `emit`, and a failing `emit` is logged, never raised."""

    def __init__(self, emit: Callable[[dict[str, Any]], None]) -> None:
        self._emit = emit
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, detail: dict[str, Any]) -> None:
        self._outbox.put(detail)

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
            detail = self._outbox.get()
            if detail is None:
                return
            try:
                self._emit(detail)
            except Exception:
                logger.exception(
                    "batch emulator: emit failed for job %s (%s)", detail.get("jobId"), detail.get("status")
                )
