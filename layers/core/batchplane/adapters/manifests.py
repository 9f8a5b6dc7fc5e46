"""Array manifests in S3: one JSON line per child, read by the worker at AWS_BATCH_JOB_ARRAY_INDEX."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_s3 import S3Client

MANIFEST_PREFIX = "_arrays/"


class S3Manifests:
    def __init__(self, bucket: str, client: S3Client) -> None:
        self.bucket = bucket
        self._client = client

    def write(self, array_name: str, text: str) -> str:
        key = f"{MANIFEST_PREFIX}{array_name}.jsonl"
        # The same members make the same bytes: a redelivery's PutObject rewrites what is there.
        self._client.put_object(
            Bucket=self.bucket, Key=key, Body=text.encode(), ContentType="application/x-ndjson"
        )
        return f"s3://{self.bucket}/{key}"
