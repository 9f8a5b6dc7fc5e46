"""The environment the functions run with locally: the template's variables resolved against the local
stack, the embedded AWS's and the Batch emulator's endpoints, and a few settings for sharing one process.

It is computed as a dict, and written to os.environ in one place, `apply_environment`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from batchplane_tools.local.template import REGION, Stack

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION}


def aws_access(aws_url: str) -> dict[str, str]:
    """Credentials and endpoint of the embedded AWS, as the functions and the Batch jobs get them."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": aws_url}


def function_environment(
    stack: Stack, *, policy: Path, aws_url: str, batch_url: str, inherited: Mapping[str, str]
) -> dict[str, str]:
    """Every function's environment variables. `inherited` is this process's environment: an
    operator's POWERTOOLS_LOG_LEVEL stands when the template sets none."""
    environment = {
        **aws_access(aws_url),
        "AWS_ENDPOINT_URL_BATCH": batch_url,
        **stack.function_environment(),
        "POLICY_PATH": str(policy),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # One process does every function's work: pace SubmitJob by Batch's account limit, not a share.
        "SUBMIT_RATE_PER_SECOND": "50",
    }
    environment.setdefault("POWERTOOLS_LOG_LEVEL", inherited.get("POWERTOOLS_LOG_LEVEL", "WARNING"))
    return environment


def recorded_environment(environment: Mapping[str, str], stack: Stack) -> dict[str, str]:
    """What the state file keeps of it for `batchplane_tools.invoke`: the template's variables (with
    their local values) and the AWS and Batch access, in that order."""
    names = [*stack.function_environment(), "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BATCH", *CREDENTIALS]
    return {name: environment[name] for name in names}


def apply_environment(environment: Mapping[str, str]) -> None:
    """The one place the local stack writes os.environ.

    The handlers run in this process and read their settings (table names, queue URLs, endpoints,
    credentials) from the environment, as Lambda gives them theirs; one process has one environment,
    so every function gets the same. The stack's own clients are configured explicitly, not from it.
    """
    os.environ.update(environment)
