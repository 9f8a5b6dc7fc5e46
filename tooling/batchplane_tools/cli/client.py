"""A small client of the REST API (urllib only): its routes as methods, its errors, SigV4 signing.

Which API to talk to (the local stack or `--url`) is `targets.py`'s business. Locally the tenant is
sent as `Authorization: Tenant <name>`; a deployed API's requests are signed with SigV4 using the
default AWS credentials. boto3 and botocore are imported only when needed.
"""

from __future__ import annotations

import http
import http.client
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from batchplane import __version__
from batchplane_tools.cli.errors import ApiError, ConfigError, Unreachable

if TYPE_CHECKING:
    from botocore.credentials import Credentials

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
        priority: int | None = None,
        hold: bool = False,
    ) -> Job:
        body: dict[str, Any] = {"job_type": job_type, "parameters": dict(parameters or {})}
        if priority is not None:
            body["priority"] = priority
        if hold:
            body["when_over_limit"] = "hold"
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
        tenant: str | None = None,
        all_tenants: bool = False,
    ) -> Page:
        """A page of jobs: the caller's; with `tenant` that tenant's, with `all_tenants` every tenant's
        unfinished ones (either, for another tenant than the caller, only for the policy's operators)."""
        query = {
            "status": status,
            "job_type": job_type,
            "limit": limit,
            "next_token": next_token,
            "tenant": tenant,
            "all_tenants": "true" if all_tenants else None,
        }
        page = self.request("GET", "/jobs", query=query)
        page.setdefault("jobs", [])
        page.setdefault("next_token", None)
        return page

    def iter_jobs(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
        tenant: str | None = None,
        all_tenants: bool = False,
    ) -> Iterator[Job]:
        """Every job of every page, following `next_token`."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self.list(
                status=status,
                job_type=job_type,
                limit=limit,
                next_token=token,
                tenant=tenant,
                all_tenants=all_tenants,
            )
            yield from page["jobs"]
            token = page.get("next_token")
            if not token or token in seen:
                return
            seen.add(token)

    def list_all(
        self,
        *,
        status: str | None = None,
        job_type: str | None = None,
        limit: int | None = None,
        tenant: str | None = None,
        all_tenants: bool = False,
    ) -> Jobs:
        return [
            *self.iter_jobs(
                status=status, job_type=job_type, limit=limit, tenant=tenant, all_tenants=all_tenants
            )
        ]

    def log(
        self, job_id: str, attempt: int, *, next_token: str | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        """A page of an attempt's log: {"job_id", "attempt", "where", "lines", "next_token"}."""
        path = f"/jobs/{_segment(job_id)}/attempts/{attempt}/log"
        return self.request("GET", path, query={"next_token": next_token, "limit": limit})

    def usage(self, first: str | None = None, last: str | None = None) -> dict[str, Any]:
        """GET /usage: the caller's estimated spend by month, job type and outcome."""
        return self.request("GET", "/usage", query={"from": first, "to": last})

    def cancel(self, job_id: str) -> Job:
        return self.request("POST", f"/jobs/{_segment(job_id)}/cancel")

    def retry(self, job_id: str) -> Job:
        return self.request("POST", f"/jobs/{_segment(job_id)}/retry")

    def bulk(
        self,
        action: str,
        criteria: Mapping[str, object],
        *,
        dry_run: bool = False,
        limit: int | None = None,
        next_token: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One call of a bulk cancel or retry (`action`): POST /bulk/<action>."""
        body: dict[str, Any] = {"filter": dict(criteria), "dry_run": dry_run}
        if limit is not None:
            body["limit"] = limit
        if next_token is not None:
            body["next_token"] = next_token
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.request("POST", f"/bulk/{action}", body=body, headers=headers)

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
        send = self._headers(data, headers)
        if self.signer is not None:
            send = self.signer(method, url, send, data)
        status, raw = self._send(urllib.request.Request(url, data=data, headers=send, method=method))
        return _json_object(status, raw)

    def _headers(self, data: bytes | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        send = {"Accept": "application/json", "User-Agent": f"batchplane-cli/{__version__}"}
        if data is not None:
            send["Content-Type"] = "application/json"
        if self.tenant:
            send["Authorization"] = f"Tenant {self.tenant}"
        send.update(extra or {})
        return send

    def _send(self, request: urllib.request.Request) -> tuple[int, bytes]:
        """The status and body of a 2xx answer; any other answer, or none, is raised as a CliError."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
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


def _json_object(status: int, raw: bytes) -> dict[str, Any]:
    """A successful answer's JSON object; an empty body is `{}`."""
    if not raw.strip():
        return {}
    try:
        answer: Any = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        snippet = " ".join(raw.decode("utf-8", "replace").split())[:100]
        raise ApiError(status, "invalid_response", f"the API did not answer with a JSON object: {snippet}")
    return answer


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")
