"""API Gateway for the local stack: an HTTP server on loopback that turns each request into a REST API
proxy event, with the identity IAM auth would give the calling tenant, and the function's proxy
response into the reply.

It serves what the template's API serves and refuses the rest as API Gateway does: a route or method
the template does not declare gets 403 with the template's MISSING_AUTHENTICATION_TOKEN gateway
response (a REST API has no 405: it cannot tell an unknown route from an unsigned request), so a
client sees here what it will see in AWS. The tenant named by `Authorization: Tenant <name>` goes
through the deployed mapping (batchplane/api/identity.py::caller_of) before anything is invoked.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from batchplane.api.errors import error_body
from batchplane.api.identity import Unauthenticated, caller_of
from batchplane.errors import ErrorDetail
from batchplane_tools.local.template import ACCOUNT, Stack

log = logging.getLogger(__name__)

LOCAL_TENANT = "local"
MISSING_TOKEN_MESSAGE = "Missing Authentication Token"  # API Gateway's $context.error.message

# Calls the API's function with one proxy event; returns its proxy response.
Invoke = Callable[[dict[str, Any]], Any]


class Refused(Exception):
    """What API Gateway answers itself, without invoking the function."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class ApiSpec:
    """What API Gateway knows of the API from the template: its routes (each function event of type
    Api) and the body of its MISSING_AUTHENTICATION_TOKEN gateway response."""

    routes: frozenset[tuple[str, str]]  # (METHOD, /path/{param})
    missing_token_body: str

    @classmethod
    def of(cls, stack: Stack) -> ApiSpec:
        routes = frozenset(
            (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
            for _, props in stack.resources("AWS::Serverless::Function")
            for event in (props.get("Events") or {}).values()
            if event["Type"] == "Api"
        )
        [api] = [props for _, props in stack.resources("AWS::Serverless::Api")]
        response = api.get("GatewayResponses", {}).get("MISSING_AUTHENTICATION_TOKEN", {})
        template = response.get("ResponseTemplates", {}).get("application/json")
        if template is None:  # API Gateway's own body when the template sets none
            template = '{"message":$context.error.messageString}'
        body = template.replace("$context.error.messageString", json.dumps(MISSING_TOKEN_MESSAGE))
        return cls(routes=routes, missing_token_body=body)

    def serves(self, method: str, path: str) -> bool:
        return any(m == method and _matches(template, path) for m, template in self.routes)


def _matches(template: str, path: str) -> bool:
    """`/jobs/{job_id}/cancel` matches `/jobs/abc/cancel`: a {parameter} is one non-empty segment."""
    wanted, given = template.split("/"), path.split("/")
    return len(wanted) == len(given) and all(
        w == g or (w.startswith("{") and w.endswith("}") and g != "")
        for w, g in zip(wanted, given, strict=True)
    )


class ApiGateway:
    """Serves from construction, on its own thread, until `stop`."""

    def __init__(self, host: str, port: int, invoke: Invoke, spec: ApiSpec) -> None:
        self._server = _Server((host, port), invoke, spec)
        self._thread = threading.Thread(target=self._server.serve_forever, name="api", daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], invoke: Invoke, spec: ApiSpec) -> None:
        self.invoke = invoke
        self.spec = spec
        super().__init__(address, _Request)


class _Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler answers a method without a do_<METHOD> with a 501 HTML page; every
        # method comes here instead, and the API's routes say which it serves.
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def _proxy(self) -> None:
        assert isinstance(self.server, _Server)
        try:
            event = self._event(self.server.spec)
            response = self.server.invoke(event)
        except Refused as refused:
            response = {"statusCode": refused.status, "body": refused.body}
        except Exception:
            log.exception("API handler failed")
            response = {"statusCode": 502, "body": json.dumps({"message": "Internal server error"})}
        self._reply(response)

    def _event(self, spec: ApiSpec) -> dict[str, Any]:
        """The request as API Gateway hands it to the function, or Refused as API Gateway refuses it."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise Refused(
                400, json.dumps(error_body("bad_request", "Content-Length is not a number"))
            ) from None
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length > 0 else None
        if not spec.serves(self.command, path_of(self.path)):
            raise Refused(403, spec.missing_token_body)
        return api_gateway_event(self.command, self.path, dict(self.headers.items()), body)

    def _reply(self, response: dict[str, Any]) -> None:
        """The function's proxy response as HTTP: multi-value headers joined, the length recomputed."""
        payload = (response.get("body") or "").encode()
        self.send_response(int(response.get("statusCode", 200)))
        headers = {**(response.get("headers") or {})}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has the headers of a body, never the body
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api: " + format, *args)


def tenant_of(headers: dict[str, str]) -> str:
    """Locally, `Authorization: Tenant <name>` says who calls (SigV4 and IAM do it in AWS); without
    it, the tenant is `local`. The name must be one that the deployed mapping reads back as itself
    from the identity it becomes, else Refused: `victim/x` would be the role `victim`'s session `x`."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, name = value.strip().partition(" ")
    if scheme.lower() != "tenant":
        return LOCAL_TENANT
    name = name.strip()
    try:
        if caller_of({"identity": identity_of(name)}).tenant == name:
            return name
    except Unauthenticated:
        pass
    reason = f"{name!r} is not a tenant name (a letter or digit, then letters, digits and _.@+=-)"
    body = error_body(
        "forbidden", "no tenant in the caller's identity", [ErrorDetail("Authorization", reason)]
    )
    raise Refused(403, json.dumps(body))


def identity_of(tenant: str) -> dict[str, str]:
    """The requestContext identity IAM auth gives a caller that assumed the role named `tenant`."""
    return {
        "accountId": ACCOUNT,
        "caller": f"AROALOCAL:{tenant}",
        "user": f"AROALOCAL:{tenant}",
        "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{tenant}/local",
        "sourceIp": "127.0.0.1",
    }


def path_of(raw_path: str) -> str:
    """The path the function sees: without the query, and without the stage (`/v1`)."""
    path = urlsplit(raw_path).path
    return path[3:] if path.startswith("/v1/") else path


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway with IAM auth would make it."""
    path = path_of(raw_path)
    query = parse_qs(urlsplit(raw_path).query, keep_blank_values=True)
    identity = {**identity_of(tenant_of(headers)), "userAgent": headers.get("User-Agent", "")}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": ACCOUNT,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": identity,
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }
