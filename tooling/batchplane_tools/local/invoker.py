"""How many invocations of each function run at once locally, and the threads that run them.

Lambda runs a function's invocations side by side, each in a sandbox of its own, up to its reserved
concurrency; locally they share this process, as threads. `--concurrency` chooses: 1 (the default) runs
each function's invocations one at a time, as one warm sandbox would; N runs up to N at once; `template`
runs each function with the concurrency template.yaml gives it (ReservedConcurrentExecutions, and an SQS
event's ScalingConfig.MaximumConcurrency), `UNRESERVED` for a function it does not cap. A
function's ReservedConcurrentExecutions caps it whatever the choice: Lambda never runs more.

What the handlers share in one process, and why that is safe with invocations side by side: each
batch has a processor of its own (batchplane/failed_records/batches.py); boto3 clients are
thread-safe and made once under a lock (adapters/clients.py); the ports, the settings, the policy
and every model are built before the first trigger fires (`Triggers.wire`); os.environ is written
once, before that (environment.py), and only read afterwards; metrics are off locally, so nothing
accumulates in Powertools' one Metrics object (observability.py::metric); the rate limiter and the
random generator are thread-safe, and the page-token key is read once (two first reads at once read
the same value). Powertools' Logger keeps the Lambda context keys (function_request_id, cold_start)
in one dict per process, so a line may carry a concurrent invocation's request id; what a line says
itself (job_id, record_id, reason) is its own. moto's DynamoDB writes are made atomic, as DynamoDB's
are (moto_atomic.py).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from batchplane_tools.functions import LambdaContext

if TYPE_CHECKING:  # the CLI parses --concurrency with this module: it must not load the template's YAML
    from batchplane_tools.local.template import Stack

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
Concurrency = int | Literal["template"]

TEMPLATE: Literal["template"] = "template"
# Lambda scales a function the template does not cap into the account's unreserved pool (1,000 by
# default); locally a few threads each are enough to run an event's copies side by side.
UNRESERVED = 8
# How long a waiting poller sleeps before it looks at `stop` again.
STOP_CHECK_SECONDS = 0.25


def parse_concurrency(text: str) -> Concurrency:
    """`template` or a whole number of at least 1 (the CLI's --concurrency)."""
    if text.strip().lower() == TEMPLATE:
        return TEMPLATE
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number or {TEMPLATE!r}, got {text!r}") from None
    if value < 1:
        raise ValueError(f"must be at least 1: {text!r}")
    return value


def function_concurrency(stack: Stack, props: dict[str, Any], choice: Concurrency) -> int:
    """How many invocations of the function with these Properties run at once."""
    reserved = props.get("ReservedConcurrentExecutions")
    cap = int(stack.resolve(reserved)) if reserved is not None else None
    wanted = (cap or UNRESERVED) if choice == TEMPLATE else int(choice)
    return max(1, min(wanted, cap) if cap is not None else wanted)


def event_concurrency(stack: Stack, spec: dict[str, Any], function: int) -> int:
    """An SQS event source's invocations at once: its ScalingConfig.MaximumConcurrency caps them too."""
    maximum = spec.get("ScalingConfig", {}).get("MaximumConcurrency")
    return min(function, int(stack.resolve(maximum))) if maximum is not None else function


class Invoker:
    """Calls a function's handler with a Lambda context, at most its concurrency at once (default 1,
    as one Lambda instance would); different functions side by side, as in AWS: the dispatcher pacing
    SubmitJob must not hold up the API. Thread-safe: the API's server and every trigger call it."""

    def __init__(self, default: int = 1) -> None:
        self._default = default
        self._guard = threading.Lock()
        self._sizes: dict[Handler, int] = {}
        self._slots: dict[Handler, threading.BoundedSemaphore] = {}

    def allow(self, handler: Handler, concurrency: int) -> None:
        """Sets the function's concurrency (before its first invocation)."""
        with self._guard:
            self._sizes[handler] = concurrency
            self._slots[handler] = threading.BoundedSemaphore(concurrency)

    def concurrency(self, handler: Handler) -> int:
        with self._guard:
            return self._sizes.get(handler, self._default)

    def __call__(self, handler: Handler, event: dict[str, Any]) -> Any:
        with self._guard:
            slots = self._slots.get(handler)
            if slots is None:
                slots = self._slots[handler] = threading.BoundedSemaphore(self._default)
        with slots:
            return handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))


class Workers:
    """The invocations one trigger has in flight, each on a thread, up to `size`. The poller reserves
    a free worker before it receives, so nothing it takes waits, invisible, for one."""

    def __init__(self, size: int, stop: threading.Event, name: str) -> None:
        self.size = size
        self._stop = stop
        self._free = threading.Semaphore(size)
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)

    def reserve(self, most: int = 1) -> int:
        """Waits for a free worker and takes up to `most` of those free; 0 once `stop` is set."""
        while not self._free.acquire(timeout=STOP_CHECK_SECONDS):
            if self._stop.is_set():
                return 0
        if self._stop.is_set():
            self._free.release()
            return 0
        taken = 1
        while taken < most and self._free.acquire(blocking=False):
            taken += 1
        return taken

    def release(self, count: int = 1) -> None:
        """Gives back workers reserved and not used."""
        for _ in range(count):
            self._free.release()

    def run(self, work: Callable[[], None]) -> None:
        """Runs `work` on a reserved worker, which is free again when it returns."""

        def done() -> None:
            try:
                work()
            except Exception:
                log.exception("an invocation's delivery failed")
            finally:
                self._free.release()

        self._pool.submit(done)

    def close(self) -> None:
        """Waits for the invocations in flight."""
        self._pool.shutdown(wait=True)
