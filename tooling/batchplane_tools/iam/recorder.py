"""Every AWS call a role makes, as IAM requests: a botocore hook on the session a role's clients come
from (handlers, Lambda's pollers, workers), and requests added by hand for what AWS's own agents do
with a role (Lambda's logs and traces, the ECS agent's image pulls and log streams)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from batchplane_tools.iam.evaluator import Request
from batchplane_tools.iam.requests import Call, RequestMapper, Unmapped
from batchplane_tools.local.template import ACCOUNT

# How moto refuses a call it finds unauthorized: "403" for JSON protocols, AccessDenied otherwise.
_DENIED_CODES = frozenset({"403", "AccessDenied", "AccessDeniedException"})


@dataclass(frozen=True)
class Recorded:
    """One call (or one modelled use of a role by AWS), and the IAM requests it makes."""

    role: str  # logical id of the role
    origin: str  # who made it with the role: the handler, Lambda's poller, a worker, an AWS agent
    flow: str
    operation: str  # service:Operation, or the modelled use
    requests: tuple[Request, ...]
    params: Any = None  # the call's parameters, as the client was given them
    denied_by_moto: bool = False
    unmapped: str = ""  # why no IAM request could be made of the call (requests.py has no rule)


@dataclass
class Recorder:
    mapper: RequestMapper
    flow: str = "setup"
    calls: list[Recorded] = field(default_factory=list)

    def attach(self, session: Any, role: str, origin: str) -> None:
        """Record every call of every client `session` makes from now on, as `role` via `origin`."""

        def keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["iam_params"] = dict(params)

        def keep_url(request: Any, **_: Any) -> None:
            request.context["iam_secure"] = request.url.startswith("https://")

        def record(
            http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
        ) -> None:
            call = Call(
                service=model.service_model.service_name,
                operation=model.name,
                params=context.get("iam_params", {}),
                response=parsed,
                region=context.get("client_region") or "us-east-1",
                account=ACCOUNT,
                secure=context.get("iam_secure", True),
            )
            code = str(parsed.get("Error", {}).get("Code", "")) or str(http_response.status_code)
            denied = http_response.status_code == 403 or code in _DENIED_CODES
            try:  # never raise into the caller: a handler may take any error for a failed record
                requests, unmapped = tuple(self.mapper.requests(call)), ""
            except Unmapped as missing:
                requests, unmapped = (), str(missing)
            operation = f"{call.service}:{call.operation}"
            self.calls.append(
                Recorded(role, origin, self.flow, operation, requests, call.params, denied, unmapped)
            )

        session.events.register("before-parameter-build", keep_params)
        session.events.register("request-created", keep_url)
        session.events.register("after-call", record)

    def add(self, role: str, origin: str, operation: str, requests: Iterable[Request]) -> None:
        """A use of `role` by AWS itself (not through a client this process has), described."""
        self.calls.append(Recorded(role, origin, self.flow, operation, tuple(requests)))

    def of_role(self, role: str) -> list[Recorded]:
        return [c for c in self.calls if c.role == role]
