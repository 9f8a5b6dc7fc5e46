"""boto3 clients, created on first use and cached, with botocore's adaptive retries.

boto3 is imported here lazily so that importing a handler costs nothing until it calls AWS.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boto3.session import Session
    from botocore.config import Config


def retry_config(max_attempts: int = 8) -> Config:
    from botocore.config import Config

    # Adaptive mode backs off on throttling (Batch's SubmitJob allows 50 TPS per account) with a
    # client-side rate limiter; standard mode alone would keep hammering.
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=3,
        read_timeout=10,
        tcp_keepalive=True,
    )


_creating = threading.Lock()  # a boto3 Session is not thread-safe (its clients are)
_clients: dict[str, Any] = {}


@cache
def _session() -> Session:
    import boto3

    return boto3.session.Session()


def client(service: str) -> Any:
    """One client per service per process, all from one session: a session loads botocore's
    endpoint and retry data once, which costs about 50 ms, and every further client from it 5-30 ms.
    Endpoints come from AWS_ENDPOINT_URL_<SERVICE> if set."""
    made = _clients.get(service)
    if made is not None:
        return made
    with _creating:
        # Looked up again under the lock: two threads that both missed must not make two clients
        # (an event hook registered on the one would miss the calls of the other).
        if service not in _clients:
            _clients[service] = _session().client(service, config=retry_config())  # type: ignore[call-overload]
        return _clients[service]


def made_clients() -> list[str]:
    """The services whose client this process has made so far."""
    return sorted(_clients)


def reset_clients() -> None:
    """Forget the session and its clients, so the next ones see a changed environment (tests)."""
    with _creating:
        _clients.clear()
        _session.cache_clear()


class LazyClient:
    """Stands in for `client(service)` and creates it at its first use, so an invocation pays only
    for the services it calls: the API's first request needs DynamoDB and SQS, not S3 or SNS."""

    __slots__ = ("service",)

    def __init__(self, service: str) -> None:
        self.service = service

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and hasattr probes must not make (or recurse into) a client
            raise AttributeError(name)
        return getattr(client(self.service), name)
