"""Faults at the handlers' own AWS calls: botocore event hooks on the clients `adapters/clients.py`
makes, so every call site is reached without touching the code under test.

`before-call.<service>.<Operation>` fires once per API call, before botocore sends it and retries it;
`after-call.<service>.<Operation>` once it has an answer. A hook that raises there is the last word:
an error raised before the call is what the caller sees after botocore's own retries ran out, and a
`Crash` (a BaseException, which no `except Exception` in the handlers or Powertools swallows) is the
process dying, before the call left or after its answer came back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from batchplane.adapters.clients import client

SERVICES = ("dynamodb", "sqs", "batch", "sns", "events", "s3")
RUNTIME = Path(__file__).resolve().parents[2] / "layers" / "core" / "batchplane"


class Crash(BaseException):  # not an Exception: nothing in the handlers may catch the process dying
    """The Lambda process dies here (a timeout, out of memory, a deploy)."""


class FaultKind(StrEnum):
    CRASH_BEFORE = "crash_before"  # (a) the process dies just before call k
    CRASH_AFTER = "crash_after"  # (b) the process dies just after call k succeeded
    THROTTLED = "throttled"  # (c) call k throttled, after botocore's retries
    SERVER_ERROR = "server_error"  # (d) call k answers a 5xx, after botocore's retries
    PERMANENT = "permanent"  # call k and every later call of its operation answer a 5xx

    @property
    def transient(self) -> bool:
        return self is not FaultKind.PERMANENT


TRANSIENT = tuple(kind for kind in FaultKind if kind.transient)

# How each service names throttling and an internal error (their API references' error lists).
_THROTTLE = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "batch": ("TooManyRequestsException", 429),
    "sns": ("Throttling", 400),
    "events": ("ThrottlingException", 400),
    "sqs": ("ThrottlingException", 400),
    "s3": ("SlowDown", 503),
}
_SERVER = {
    "dynamodb": ("InternalServerError", 500),
    "batch": ("ServerException", 500),
    "sns": ("InternalError", 500),
    "events": ("InternalException", 500),
    "sqs": ("InternalError", 500),
    "s3": ("ServiceUnavailable", 503),
}
SERVER_ERROR_CODES = frozenset(code for code, _ in _SERVER.values())


def service_error(kind: FaultKind, service: str, operation: str) -> ClientError:
    code, status = (_THROTTLE if kind is FaultKind.THROTTLED else _SERVER)[service]
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {kind.value}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@dataclass(frozen=True)
class Call:
    """One AWS call a handler made: the operation and where in the runtime it was made."""

    service: str
    operation: str
    site: str  # the adapter's frame, and the use case's that called it, each with its line

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"

    @property
    def where(self) -> str:
        """The call site without line numbers: what stays the same while the code around it changes."""
        return f"{self.name} " + " < ".join(frame.rsplit(":", 1)[0] for frame in self.site.split(" < "))


def _site() -> str:
    """The innermost runtime frame (the adapter making the call) and, when it is another, the
    innermost use case's (service/): `adapters/store.py::DynamoJobStore.get:180 < service/sweep.py::
    _redispatch:93`. One adapter method called from two places of a flow is two call sites."""
    frames: list[str] = []
    frame = sys._getframe(2)
    while frame is not None and len(frames) < 2:
        path = Path(frame.f_code.co_filename)
        if path.is_relative_to(RUNTIME):
            place = f"{path.relative_to(RUNTIME)}::{frame.f_code.co_qualname}:{frame.f_lineno}"
            if not frames or (path.parent.name == "service" and not frames[0].startswith("service/")):
                frames.append(place)
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(frames) or "?"


@dataclass
class Armed:
    """A fault waiting for the `nth` (0-based) call at the site of `target`."""

    kind: FaultKind
    target: Call
    nth: int
    seen: int = 0
    fired: Call | None = None
    after_pending: bool = False
    spent: bool = False

    def done(self) -> None:
        """No later call is faulted (a transient fault that did not fire by now never will)."""
        self.spent = True

    def fault_for(self, call: Call) -> bool:
        """Whether this call is faulted."""
        if self.spent:
            return False
        if self.fired is not None:  # a permanent fault goes on failing the operation
            return self.kind is FaultKind.PERMANENT and call.name == self.fired.name
        if call.where != self.target.where:
            return False
        self.seen += 1
        if self.seen - 1 != self.nth:
            return False
        self.fired = call
        return True


@dataclass
class Injector:
    """Records every call the handlers' clients make and, when armed, faults one of them."""

    calls: list[Call] = field(default_factory=list)
    armed: Armed | None = None
    _hooks: list[tuple[Any, str, Any]] = field(default_factory=list)

    def install(self) -> None:
        for service in SERVICES:
            made = client(service)
            for event, hook in (("before-call", self._before), ("after-call", self._after)):
                made.meta.events.register(event, hook)
                self._hooks.append((made, event, hook))

    def uninstall(self) -> None:
        for made, event, hook in self._hooks:
            made.meta.events.unregister(event, hook)
        self._hooks.clear()

    @contextmanager
    def recording(self) -> Iterator[list[Call]]:
        """The calls made inside the block."""
        start = len(self.calls)
        recorded: list[Call] = []
        try:
            yield recorded
        finally:
            recorded.extend(self.calls[start:])

    @contextmanager
    def fault(self, kind: FaultKind, target: Call, nth: int = 0) -> Iterator[Armed]:
        """Fault the `nth` call at `target`'s site made inside the block (for PERMANENT, every later
        call of its operation too)."""
        self.armed = Armed(kind, target, nth)
        try:
            yield self.armed
        finally:
            self.armed = None

    def _before(self, model: Any, **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name, _site())
        self.calls.append(call)
        armed = self.armed
        if armed is None or not armed.fault_for(call):
            return
        if armed.kind is FaultKind.CRASH_BEFORE:
            raise Crash(f"died before {call.name}")
        if armed.kind is FaultKind.CRASH_AFTER:
            armed.after_pending = True
            return
        error_kind = FaultKind.SERVER_ERROR if armed.kind is FaultKind.PERMANENT else armed.kind
        raise service_error(error_kind, call.service, call.operation)

    def _after(self, model: Any, **_: Any) -> None:
        armed = self.armed
        if armed is not None and armed.after_pending:
            armed.after_pending = False
            raise Crash(f"died after {model.service_model.service_name}.{model.name}")
