"""S3: the objects a job wrote under its output prefix, recorded as its output artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchplane.models.job import Artifact, ArtifactRole

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_s3 import S3Client


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def list_outputs(self, prefix_uri: str, limit: int = 1000) -> list[Artifact]:
        """Up to `limit` objects under the prefix (a job writing more is summarised by the first ones)."""
        bucket, prefix = split_uri(prefix_uri)
        found: list[Artifact] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit}):
            for item in page.get("Contents", []):
                found.append(
                    Artifact(
                        uri=f"s3://{bucket}/{item['Key']}",
                        role=ArtifactRole.OUTPUT,
                        size=int(item["Size"]),
                        etag=str(item["ETag"]).strip('"'),
                    )
                )
        return found
