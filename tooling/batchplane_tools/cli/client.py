"""A small client of the REST API (urllib only), and where to find the API: the local stack or `--url`.

Locally, `batchplane local` writes where its endpoints are to a JSON file and the tenant is sent as
`Authorization: Tenant <name>`. A deployed API is reached with `--url` and requests are signed with
SigV4 using the default AWS credentials. boto3 and botocore are imported only when needed.
"""

from __future__ import annotations

import argparse
import http
import http.client
import json
import os
import re
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from batchplane import __version__
from batchplane_tools.paths import STATE_FILE
from batchplane_tools.state_file import LocalInfo, NoStateFile, StateFileError

if TYPE_CHECKING:
    from botocore.credentials import Credentials
    from mypy_boto3_s3 import S3Client

LOCAL_HINT = "Is `make local` running? (or pass --url)"
DEPLOYED_HINT = "Check --url (or BATCHPLANE_API_URL) and your network."

Job = dict[str, Any]
Jobs = list[Job]
Page = dict[str, Any]

_FALLBACK_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_request",
    429: "too_many_requests",
}
_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z]{2}(?:-[a-z]+)+-\d+)\.")


class CliError(Exception):
    """An error shown to the user as one line; `exit_code` is what the command returns."""

    exit_code = 2


class ConfigError(CliError):
    """The command cannot be carried out as asked: a missing option, file, region or credentials."""


class ApiError(CliError):
    """The API answered with an error: `{"error": {"code", "message", "details"}}`."""

    exit_code = 1

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        super().__init__(status, code, message, self.details)

    def __str__(self) -> str:
        text = f"{self.status} {self.code}: {self.message}"
        if self.details:
            parts = [f"{d.get('field', '?')}: {d.get('reason', '?')}" for d in self.details]
            text += f" ({'; '.join(parts)})"
        return text


class Unreachable(CliError):
    """Nothing usable answered at `url`: refused, timed out, unknown host, TLS error or no local stack."""

    def __init__(self, url: str, why: str, *, hint: str | None = None, what: str = "the API"):
        self.url = url
        self.why = why
        self.hint = hint
        self.what = what
        super().__init__(url, why)

    def __str__(self) -> str:
        text = f"cannot reach {self.what} at {self.url} ({self.why})."
        return f"{text} {self.hint}" if self.hint else text


class NoLocalStack(Unreachable):
    """No `--url` was given and the local stack's file does not exist."""

    def __init__(self, path: Path):
        super().__init__(str(path), "no such file", hint=LOCAL_HINT)
        self.path = path

    def __str__(self) -> str:
        return f"no local stack found ({self.path} does not exist). {self.hint}"


class Signer(Protocol):
    """Given a request about to be sent, returns the headers to send it with."""

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> dict[str, str]: ...


class SigV4Signer:
    """Signs requests for API Gateway (service `execute-api`) with the default boto3 credentials."""

    def __init__(self, region: str, *, credentials: Credentials | None = None, service: str = "execute-api"):
        self.region = region
        self.service = service
        self._credentials = credentials

    def credentials(self) -> Credentials:
        if self._credentials is None:
            import boto3

            found = boto3.session.Session().get_credentials()
            if found is None:
                raise ConfigError(
                    "no AWS credentials to sign requests with; configure a profile (AWS_PROFILE) "
                    "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                )
            self._credentials = found
        return self._credentials

    def __call__(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self.credentials(), self.service, self.region).add_auth(request)
        return {str(name): str(value) for name, value in request.headers.items()}


def describe(reason: object, timeout: float) -> str:
    """A short reason for a failed connection, as in "(connection refused)"."""
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {reason.verify_message}"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason.reason or reason}"
    if isinstance(reason, ConnectionResetError):
        return "connection closed by the server"
    if isinstance(reason, http.client.HTTPException):
        return f"not an HTTP answer: {type(reason).__name__}"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def api_error(status: int, raw: bytes) -> ApiError:
    """The error of a non-2xx answer: the API's own JSON error, API Gateway's `{"message"}`, or text."""
    fallback = _FALLBACK_CODES.get(status, "server_error" if status >= 500 else f"http_{status}")
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        error = doc["error"]
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        return ApiError(status, str(error.get("code") or fallback), str(error.get("message") or ""), details)
    if isinstance(doc, dict) and (doc.get("message") or doc.get("Message")):  # API Gateway's own errors
        return ApiError(status, fallback, str(doc.get("message") or doc.get("Message")))
    text = " ".join(raw.decode("utf-8", "replace").split())[:200]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return ApiError(status, fallback, text or phrase)


class ApiClient:
    """The REST API's routes as methods that return the JSON answer as a dict."""

    def __init__(
        self,
        base_url: str,
        *,
        tenant: str | None = None,
        signer: Signer | None = None,
        timeout: float = 10,
        hint: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.tenant = tenant
        self.signer = signer
        self.timeout = timeout
        self.hint = hint

    def submit(
        self,
        job_type: str,
        parameters: Mapping[str, str] | None = None,
        *,
        vcpus: int | None = None,
        memory_mib: int | None = None,
        inputs: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        body: dict[str, Any] = {"job_type": job_type, "parameters": dict(parameters or {})}
        if vcpus is not None:
            body["vcpus"] = vcpus
        if memory_mib is not None:
            body["memory_mib"] = memory_mib
        if inputs:
            body["inputs"] = [{"uri": uri} for uri in inputs]
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", "/jobs", body=body, headers=headers)

    def get(self, job_id: str) -> Job:
        return self.request("GET", f"/jobs/{_segment(job_id)}")

    def list(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
    ) -> Page:
        query = {"status": status, "job_type": job_type, "limit": limit, "next_token": next_token}
        page = self.request("GET", "/jobs", query=query)
        page.setdefault("jobs", [])
        page.setdefault("next_token", None)
        return page

    def iter_jobs(
        self, *, status: str | None = None, job_type: str | None = None, limit: int | None = None
    ) -> Iterator[Job]:
        """Every job of every page, following `next_token`."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list(status=status, job_type=job_type, limit=limit, next_token=token)
            yield from page["jobs"]
            token = page.get("next_token")
            if not token or token in seen:
                return
            seen.add(token)

    def list_all(
        self, *, status: str | None = None, job_type: str | None = None, limit: int | None = None
    ) -> Jobs:
        return [*self.iter_jobs(status=status, job_type=job_type, limit=limit)]

    def cancel(self, job_id: str) -> Job:
        return self.request("POST", f"/jobs/{_segment(job_id)}/cancel")

    def retry(self, job_id: str) -> Job:
        return self.request("POST", f"/jobs/{_segment(job_id)}/retry")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self.base_url + path
        pairs = [(k, str(v)) for k, v in (query or {}).items() if v is not None]
        if pairs:  # RFC 3986 encoding, as SigV4 canonicalizes it
            url += "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="-_.~")
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        send = {"Accept": "application/json", "User-Agent": f"batchplane-cli/{__version__}"}
        if data is not None:
            send["Content-Type"] = "application/json"
        if self.tenant:
            send["Authorization"] = f"Tenant {self.tenant}"
        send.update(headers or {})
        if self.signer is not None:
            send = self.signer(method, url, send, data)
        request = urllib.request.Request(url, data=data, headers=send, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            try:
                raw = error.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            raise api_error(error.code, raw) from None
        except urllib.error.URLError as error:
            raise Unreachable(self.base_url, describe(error.reason, self.timeout), hint=self.hint) from None
        except (OSError, http.client.HTTPException) as error:
            raise Unreachable(self.base_url, describe(error, self.timeout), hint=self.hint) from None
        if not raw.strip():
            return {}
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            snippet = " ".join(raw.decode("utf-8", "replace").split())[:100]
            raise ApiError(
                status, "invalid_response", f"the API did not answer with a JSON object: {snippet}"
            )
        return answer


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


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
    given = args.local_file or os.environ.get("BATCHPLANE_LOCAL_FILE")
    return Path(given) if given else STATE_FILE


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


@dataclass(frozen=True)
class Ingest:
    """Where file drops go: an S3 client, the ingest bucket, and what to say when S3 is unreachable."""

    s3: S3Client
    bucket: str
    endpoint: str
    hint: str | None
    what: str = "S3"


def resolve_ingest(args: argparse.Namespace) -> Ingest:
    """The ingest bucket: the local stack's (on its embedded AWS), or `--bucket` on AWS with `--url`."""
    import boto3
    from botocore.config import Config

    bucket: str | None = getattr(args, "bucket", None)
    url = api_url_of(args)
    if url:
        if not bucket:
            raise ConfigError("with --url, pass --bucket (the ingest bucket of the deployed stack)")
        region = region_for(args, url)
        s3 = boto3.session.Session().client("s3", region_name=region)
        return Ingest(s3, bucket, f"s3 in {region}", DEPLOYED_HINT)
    info = load_local(local_file_of(args))
    bucket = bucket or info.ingest_bucket
    if not bucket:
        raise ConfigError(f"{local_file_of(args)} names no ingest_bucket; pass --bucket")
    # The embedded AWS accepts any credentials: the environment's if set, dummy ones otherwise (no
    # profile, SSO or instance-metadata lookups for a local endpoint).
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(
        aws_access_key_id=key if key and secret else "local",
        aws_secret_access_key=secret if key and secret else "local",
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN") if key and secret else None,
        region_name=info.region,
    )
    config = Config(
        s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5
    )
    s3 = session.client("s3", endpoint_url=info.aws_endpoint_url, config=config)
    endpoint = info.aws_endpoint_url or f"s3 in {info.region}"
    return Ingest(
        s3, bucket, endpoint, LOCAL_HINT, "the local AWS endpoint" if info.aws_endpoint_url else "S3"
    )
