"""Which API a command talks to, from its options and the environment: `--url` (or
`BATCHPLANE_API_URL`), a deployed API signed with SigV4; else the local stack, found through the file
`batchplane local` writes once ready (`--local-file`, `BATCHPLANE_LOCAL_FILE`, or the default)."""

from __future__ import annotations

import argparse
import os
import re
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from batchplane_tools.cli.client import ApiClient, SigV4Signer
from batchplane_tools.cli.errors import ConfigError, Unreachable
from batchplane_tools.paths import STATE_FILE
from batchplane_tools.state_file import LocalInfo, NoStateFile, StateFileError

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_RETENTION_DAYS = 90  # template.yaml's JobRetentionDays default

LOCAL_HINT = "Is `make local` running? (or pass --url)"
DEPLOYED_HINT = "Check --url (or BATCHPLANE_API_URL) and your network."

_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.")


class NoLocalStack(Unreachable):
    """No `--url` was given and the local stack's file does not exist."""

    def __init__(self, path: Path):
        super().__init__(str(path), "no such file", hint=LOCAL_HINT)
        self.path = path

    def __str__(self) -> str:
        return f"no local stack found ({self.path} does not exist). {self.hint}"


def load_local(path: Path) -> LocalInfo:
    """The local stack's state file, its faults said as the CLI says them."""
    try:
        return LocalInfo.load(path)
    except NoStateFile:
        raise NoLocalStack(path) from None
    except StateFileError as error:
        raise ConfigError(str(error)) from None


def api_url_of(args: argparse.Namespace) -> str | None:
    """The deployed API's URL: `--url`, else `BATCHPLANE_API_URL`; None means the local stack."""
    url: str | None = args.url or os.environ.get("BATCHPLANE_API_URL")
    return url or None


def local_file_of(args: argparse.Namespace) -> Path:
    """`--local-file`, `BATCHPLANE_LOCAL_FILE` (a stack's aws.env sets it), else the default file;
    when that is missing, the one other running stack's (`<name>-<pid>.json` beside it)."""
    given = args.local_file or os.environ.get("BATCHPLANE_LOCAL_FILE")
    if given:
        return Path(given)
    if STATE_FILE.exists():
        return STATE_FILE
    from batchplane_tools.local.stack_files import running_stacks

    others = running_stacks(STATE_FILE)
    if len(others) > 1:
        names = ", ".join(str(path) for path in others)
        raise ConfigError(
            f"several local stacks are running ({names}): pass --local-file, or source one's aws.env"
        )
    return others[0] if others else STATE_FILE


def region_of(url: str) -> str | None:
    """The region in an `https://<id>.execute-api.<region>.amazonaws.com` URL."""
    match = _REGION_IN_URL.search(urllib.parse.urlsplit(url).netloc + ".")
    return match.group(1) if match else None


def region_for(args: argparse.Namespace, url: str | None = None) -> str:
    """`--region`, else the URL's, else the environment's or the AWS profile's."""
    region: str | None = args.region or (region_of(url) if url else None)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        import boto3

        region = boto3.session.Session().region_name
    if not region:
        raise ConfigError("cannot tell the AWS region; pass --region (or set AWS_DEFAULT_REGION)")
    return region


def _timeout_of(args: argparse.Namespace) -> float:
    return float(args.timeout) if args.timeout else 10.0


def resolve_target(args: argparse.Namespace) -> ApiClient:
    """The API to talk to: `--url` (signed with SigV4), else the local stack from its file."""
    url = api_url_of(args)
    if url:
        signer = SigV4Signer(region_for(args, url))
        return ApiClient(url, signer=signer, timeout=_timeout_of(args), hint=DEPLOYED_HINT)
    info = load_local(local_file_of(args))
    tenant = args.tenant or info.tenant
    return ApiClient(info.api_url, tenant=tenant, timeout=_timeout_of(args), hint=LOCAL_HINT)


def local_session(info: LocalInfo) -> Session:
    """A boto3 session for the local stack's embedded AWS, which accepts any credentials: the
    environment's if set, dummy ones otherwise (no profile, SSO or instance-metadata lookups for a
    local endpoint)."""
    import boto3

    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    return boto3.session.Session(
        aws_access_key_id=key if key and secret else "local",
        aws_secret_access_key=secret if key and secret else "local",
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") if key and secret else None,
        region_name=info.region,
    )


def resolve_table(args: argparse.Namespace) -> tuple[DynamoDBClient, str, int]:
    """The jobs table, a DynamoDB client for it, and the retention its functions use (days):
    `--table` on AWS (90, the template's default), else the local stack's."""
    if args.table:
        import boto3

        client = boto3.session.Session().client("dynamodb", region_name=region_for(args))
        return client, args.table, DEFAULT_RETENTION_DAYS
    info = load_local(local_file_of(args))
    if not info.jobs_table:
        raise ConfigError(f"{local_file_of(args)} names no jobs_table; pass --table")
    client = local_session(info).client("dynamodb", endpoint_url=info.aws_endpoint_url)
    days = int(info.function_environment.get("RETENTION_DAYS") or DEFAULT_RETENTION_DAYS)
    return client, info.jobs_table, days
