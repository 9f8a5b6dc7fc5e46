"""Where `batchplane drop` puts a file: which ingest bucket (the local stack's, on its embedded AWS, or
`--bucket` on AWS with `--url`), and the upload, its failures said as the CLI says them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from batchplane_tools.cli.errors import CommandFailed, ConfigError, Unreachable
from batchplane_tools.cli.targets import (
    DEPLOYED_HINT,
    LOCAL_HINT,
    api_url_of,
    load_local,
    local_file_of,
    local_session,
    region_for,
)
from batchplane_tools.state_file import LocalInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class Ingest:
    """Where file drops go: an S3 client, the ingest bucket, and what to say when S3 is unreachable;
    the tenant whose prefix a file goes under by default (None: not known for a deployed stack)."""

    s3: S3Client
    bucket: str
    endpoint: str
    hint: str | None
    what: str = "S3"
    tenant: str | None = None

    def upload(self, path: Path, key: str) -> str:
        """Put the file at `key` in the bucket; returns the object's s3:// URI."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        uri = f"s3://{self.bucket}/{key}"
        try:
            self.s3.upload_file(str(path), self.bucket, key)
        except (EndpointConnectionError, ConnectTimeoutError) as error:
            why = "timed out" if isinstance(error, ConnectTimeoutError) else "connection refused"
            raise Unreachable(self.endpoint, why, hint=self.hint, what=self.what) from None
        except NoCredentialsError:
            raise ConfigError(
                "no AWS credentials to upload with; configure a profile (AWS_PROFILE)"
            ) from None
        except (ClientError, S3UploadFailedError) as error:
            raise CommandFailed(f"cannot upload {path} to {uri}: {error}") from None
        return uri


def resolve_ingest(args: argparse.Namespace) -> Ingest:
    """The ingest bucket: the local stack's (on its embedded AWS), or `--bucket` on AWS with `--url`."""
    bucket: str | None = args.bucket
    url = api_url_of(args)
    if url:
        if not bucket:
            raise ConfigError("with --url, pass --bucket (the ingest bucket of the deployed stack)")
        import boto3

        region = region_for(args, url)
        s3 = boto3.session.Session().client("s3", region_name=region)
        return Ingest(s3, bucket, f"s3 in {region}", DEPLOYED_HINT, tenant=args.tenant)
    info = load_local(local_file_of(args))
    bucket = bucket or info.ingest_bucket
    if not bucket:
        raise ConfigError(f"{local_file_of(args)} names no ingest_bucket; pass --bucket")
    endpoint = info.aws_endpoint_url or f"s3 in {info.region}"
    what = "the local AWS endpoint" if info.aws_endpoint_url else "S3"
    return Ingest(_local_s3(info), bucket, endpoint, LOCAL_HINT, what, tenant=args.tenant or info.tenant)


def _local_s3(info: LocalInfo) -> S3Client:
    """An S3 client of the local stack's embedded AWS."""
    from botocore.config import Config

    session = local_session(info)
    config = Config(
        s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5
    )
    return session.client("s3", endpoint_url=info.aws_endpoint_url, config=config)
