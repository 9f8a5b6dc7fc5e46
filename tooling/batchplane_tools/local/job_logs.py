"""The jobs' output in the local CloudWatch Logs, as awslogs puts it in AWS: each line of a job's
output file (the emulator's, under the stack's state directory) becomes an event of the log stream
Batch names in `container.logStreamName`, in the job definitions' log group. The API then reads a
log locally exactly as it does in AWS (GetLogEvents).

Lines are shipped every SHIP_SECONDS while a job runs, and all of them, the unfinished last one
included, before its RUNNING and terminal state changes go to the event bus: a client that sees a job
ended finds its whole log.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOG_GROUP = "/aws/batch/job"  # awslogs' default on Batch; template.yaml's job definitions set none
SHIP_SECONDS = 0.5
# PutLogEvents takes up to 10,000 events, 1 MB, and a line is at most 256 KB.
BATCH_EVENTS = 10_000
BATCH_BYTES = 1_000_000
MAX_LINE_BYTES = 256 * 1024 - 26  # CloudWatch counts 26 bytes of overhead per event


@dataclass
class _Stream:
    path: Path
    offset: int = 0
    done: bool = False


class LogShipper:
    """Copies the jobs' output files into CloudWatch Logs, line by line, in order."""

    def __init__(self, logs: Any, streams: Callable[[], list[tuple[str, Path, bool]]]) -> None:
        self._logs = logs
        self._list = streams  # (stream name, output file, ended) of every started job
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=LOG_GROUP)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="job-log-shipper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def before_event(self, detail: dict[str, Any]) -> None:
        """Called with each Batch state change before it goes to the bus: a job running or ended has
        its stream, and an ended job its whole output, in CloudWatch Logs first."""
        stream = (detail.get("container") or {}).get("logStreamName")
        if stream and detail.get("status") in ("RUNNING", "SUCCEEDED", "FAILED"):
            self.ship(only=stream)  # a job ended before it ran has no stream, and nothing to ship

    def ship(self, only: str | None = None) -> None:
        """Ships what each job (or the job of stream `only`) wrote since the last call."""
        for name, path, ended in self._list():
            if only is not None and name != only:
                continue
            try:
                with self._lock:
                    self._ship_one(name, path, ended)
            except Exception:  # one stream's trouble (a file capped away, moto) stops no other
                logger.exception("job logs: cannot ship %s", name)

    def _ship_one(self, name: str, path: Path, ended: bool) -> None:
        stream = self._streams.get(name)
        if stream is None:
            self._logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
            stream = self._streams[name] = _Stream(path)
        if stream.done:
            return
        try:
            with open(stream.path, "rb") as handle:
                handle.seek(stream.offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        # A running job's unfinished last line waits for its end; an ended job's goes now.
        end = len(data) if ended else data.rfind(b"\n") + 1
        lines = data[:end].splitlines()
        stream.offset += end
        stream.done = ended
        self._put(name, [line.decode("utf-8", "replace")[:MAX_LINE_BYTES] or " " for line in lines])

    def _put(self, name: str, lines: list[str]) -> None:
        now = int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        size = 0
        for line in lines:
            cost = len(line.encode()) + 26
            if batch and (len(batch) == BATCH_EVENTS or size + cost > BATCH_BYTES):
                self._logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=name, logEvents=batch)
                batch, size = [], 0
            batch.append({"timestamp": now, "message": line})
            size += cost
        if batch:
            self._logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=name, logEvents=batch)

    def _run(self) -> None:
        while not self._stop.wait(SHIP_SECONDS):
            self.ship()
