"""boto3 clients, created on first use and cached, with botocore's adaptive retries.

boto3 is imported here lazily so that importing a handler costs nothing until it calls AWS.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


@cache
def client(service: str) -> Any:
    """One client per service per process. Endpoints come from AWS_ENDPOINT_URL_<SERVICE> if set."""
    import boto3

    return boto3.session.Session().client(service, config=retry_config())  # type: ignore[call-overload]
