"""An `s3://bucket/key` URI taken apart strictly: one spelling for one object.

Tenant boundaries compare a key with a prefix, so a URI is accepted only where its text is exactly
what S3 will read: S3 keys are literal (no percent-decoding, no `.` or `..` resolution, `//` is not
`/`), but a worker, a shell or an HTTP library on the way may decode or normalise them. A URI that
could read differently to any of them is refused instead of being compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "s3://"
MAX_KEY_BYTES = 1024  # S3's limit

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# Names S3 reserves for access point aliases, Object Lambda, Multi-Region Access Points, directory
# and table buckets: each reaches a bucket under another name, so a name comparison would miss it.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a bucket name S3 would give a general purpose bucket; None when it is."""
    if not _BUCKET_NAME.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
        return f"{name!r} is not a valid S3 bucket name"
    if _IPV4.fullmatch(name):
        return f"{name!r} is formatted as an IP address, not a bucket name"
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return f"{name!r} is an alias or reserved name, not a bucket: name the bucket itself"
    return None


def path_problem(path: str, what: str = "key") -> str | None:
    """Why a key (or key prefix) could read differently to someone who decodes or normalises it."""
    if _CONTROL.search(path):
        return f"control character in the {what}"
    escape = _PERCENT_ESCAPE.search(path)
    if escape:
        return (
            f"percent-encoded sequence {escape.group()} in the {what}: S3 keys are literal, "
            "write the character itself"
        )
    if "://" in path:
        return f"another URI inside the {what}"
    segments = path.split("/")
    if path.endswith("/"):
        segments.pop()  # a prefix or a folder marker ends in "/"
    if any(segment == "" for segment in segments):
        return f"empty path segment (//, or a leading /) in the {what}"
    if any(segment in (".", "..") for segment in segments):
        return f"'.' or '..' path segment in the {what}"
    return None


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    @classmethod
    def parse(cls, text: str) -> S3Uri:
        """The bucket and key of `s3://bucket/key`; ValueError saying why for anything else."""
        if not text.startswith(SCHEME):
            if text.strip().lower().startswith(SCHEME):
                raise ValueError("write the URI as s3://bucket/key (lowercase scheme, nothing before it)")
            raise ValueError("not an s3:// URI")
        bucket, slash, key = text.removeprefix(SCHEME).partition("/")
        problem = bucket_name_problem(bucket)
        if problem:
            raise ValueError(problem)
        if not slash or not key:
            raise ValueError(f"s3://{bucket}/ names no object key")
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise ValueError(f"the key is longer than S3's {MAX_KEY_BYTES} bytes")
        problem = path_problem(key)
        if problem:
            raise ValueError(problem)
        return cls(bucket, key)

    def is_under(self, bucket: str, prefix: str) -> bool:
        """In `bucket`, under `prefix`: the bucket compared whole, the key's prefix as S3 compares it."""
        return self.bucket == bucket and self.key.startswith(prefix)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"
