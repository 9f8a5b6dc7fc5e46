"""The HTTP side: Batch's REST-JSON paths on loopback, as boto3's batch client calls them, each routed
to an operation; ClientException and unexpected failures answered as Batch answers them."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batchplane_tools.emulator.requests import ClientException, Reply, parse_body

logger = logging.getLogger(__name__)

# An operation takes the request's JSON body and returns the response's.
Operation = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Operations:
    """What the emulator does for each Batch operation it serves."""

    submit_job: Operation
    describe_jobs: Operation
    list_jobs: Operation
    terminate_job: Operation
    cancel_job: Operation
    describe_job_queues: Operation
    get_job_queue_snapshot: Operation

    def route(self, path: str) -> Operation | None:
        return {
            "/v1/submitjob": self.submit_job,
            "/v1/describejobs": self.describe_jobs,
            "/v1/listjobs": self.list_jobs,
            "/v1/terminatejob": self.terminate_job,
            "/v1/canceljob": self.cancel_job,
            "/v1/describejobqueues": self.describe_job_queues,
            "/v1/getjobqueuesnapshot": self.get_job_queue_snapshot,
        }.get(path.split("?", 1)[0].rstrip("/"))

    def answer(self, path: str, raw: bytes) -> Reply:
        """A POST to `path` with the body `raw`."""
        try:
            operation = self.route(path)
            if operation is None:
                raise ClientException(f"POST {path} is not an operation of the local Batch emulator", 404)
            return 200, {}, operation(parse_body(raw))
        except ClientException as error:
            return error.reply()
        except Exception as error:
            logger.exception("batch emulator: %s failed", path)
            return 500, {"x-amzn-ErrorType": "ServerException"}, {"message": str(error)}


class BatchServer(ThreadingHTTPServer):
    """Serves `operations` on a thread of its own from `start` to `stop`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], operations: Operations) -> None:
        self.operations = operations
        self._serving_thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._serving_thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="batch-emulator-http", daemon=True
        )
        self._serving_thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._serving_thread is not None:
            self._serving_thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pool expects

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        assert isinstance(self.server, BatchServer)
        self._reply(*self.server.operations.answer(self.path, raw))

    def _not_found(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        message = f"{self.command} {self.path} is not an operation of the local Batch emulator"
        self._reply(*ClientException(message, 404).reply())

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_found

    def _reply(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("batch emulator: " + format, *args)
