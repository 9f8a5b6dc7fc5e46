"""API Gateway for the local stack: an HTTP server on loopback that turns each request into a REST API
proxy event, with the identity IAM auth would give the calling tenant, and the function's proxy
response into the reply.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from batchplane_tools.local.template import ACCOUNT

log = logging.getLogger(__name__)

LOCAL_TENANT = "local"

# Calls the API's function with one proxy event; returns its proxy response.
Invoke = Callable[[dict[str, Any]], Any]


class ApiGateway:
    """Serves from construction, on its own thread, until `stop`."""

    def __init__(self, host: str, port: int, invoke: Invoke) -> None:
        self._server = _Server((host, port), invoke)
        self._thread = threading.Thread(target=self._server.serve_forever, name="api", daemon=True)
        self._thread.start()
        self.url = f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], invoke: Invoke) -> None:
        self.invoke = invoke
        super().__init__(address, _Request)


class _Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def _proxy(self) -> None:
        assert isinstance(self.server, _Server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace") if length else None
        event = api_gateway_event(self.command, self.path, dict(self.headers.items()), body)
        try:
            response = self.server.invoke(event)
        except Exception:
            log.exception("API handler failed")
            response = {"statusCode": 502, "body": json.dumps({"message": "Internal server error"})}
        self._reply(response)

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
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api: " + format, *args)


def tenant_of(headers: dict[str, str]) -> str:
    """Locally, `Authorization: Tenant <name>` says who calls (SigV4 and IAM do it in AWS)."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, name = value.partition(" ")
    return name.strip() if scheme.lower() == "tenant" and name.strip() else LOCAL_TENANT


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    """An API Gateway REST proxy event, as API Gateway with IAM auth would make it."""
    parts = urlsplit(raw_path)
    path = parts.path[3:] if parts.path.startswith("/v1/") else parts.path
    query = parse_qs(parts.query, keep_blank_values=True)
    tenant = tenant_of(headers)
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
            "identity": {
                "accountId": ACCOUNT,
                "caller": f"AROALOCAL:{tenant}",
                "user": f"AROALOCAL:{tenant}",
                "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{tenant}/local",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }
