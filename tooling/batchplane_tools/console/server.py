"""The console's HTTP server: the pages from the package's `static/`, and `/api/<route>` proxied to the
REST API. Locally the API is the local stack's (its caller, `local`, is an operator); with
`batchplane console --api URL` it is a deployed API, each request signed with SigV4 (service
`execute-api`) with the user's default credentials. The browser never holds credentials.

Only GET is proxied: the console reads, and a page of another site cannot make the user's signed
credentials cancel or retry anything through it. A request whose Host is not the console's own
address is refused, so a rebound DNS name cannot read through it either.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from batchplane_tools.cli.client import Signer

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# What the API's answer may pass on to the browser.
_PASSED_HEADERS = ("Content-Type", "Retry-After")


def static_files() -> dict[str, bytes]:
    """The console's files by name, read once: whatever the package ships, nothing else is served."""
    folder = files("batchplane_tools.console") / "static"
    return {
        entry.name: entry.read_bytes()
        for entry in folder.iterdir()
        if entry.is_file() and "." + entry.name.rsplit(".", 1)[-1] in _TYPES
    }


@dataclass(frozen=True)
class Upstream:
    """The REST API the console reads: its base URL, and how a request to it is signed (None: the local
    stack, whose caller is its default tenant)."""

    base_url: str
    signer: Signer | None = None
    timeout: float = 15.0

    @property
    def mode(self) -> str:
        return "deployed" if self.signer is not None else "local"

    def get(self, path_and_query: str) -> tuple[int, dict[str, str], bytes]:
        url = self.base_url.rstrip("/") + path_and_query
        headers: Mapping[str, str] = {"Accept": "application/json"}
        if self.signer is not None:
            headers = self.signer("GET", url, headers, None)
        request = urllib.request.Request(url, headers=dict(headers), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            body = {
                "error": {
                    "code": "unreachable",
                    "message": f"the API at {self.base_url}: {reason}",
                    "details": [],
                }
            }
            return 502, {"Content-Type": "application/json"}, json.dumps(body).encode()


class ConsoleServer:
    """Serves from construction, on its own thread, until `stop`."""

    def __init__(self, host: str, port: int, upstream: Upstream) -> None:
        self._server = _Server((host, port), upstream, static_files())
        self._thread = threading.Thread(target=self._server.serve_forever, name="console", daemon=True)
        self._thread.start()
        bound = self._server.server_address[1]
        self.url = f"http://{host}:{bound}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream: Upstream, static: dict[str, bytes]) -> None:
        self.upstream = upstream
        self.static = static
        super().__init__(address, _Request)

    def own_hosts(self) -> set[str]:
        host, port = str(self.server_address[0]), self.server_address[1]
        names = (
            {host, "localhost", "127.0.0.1", "[::1]"} if host in ("127.0.0.1", "::1", "localhost") else {host}
        )
        return {f"{name}:{port}" for name in names}


class _Request(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        if self.headers.get("Host", "") not in self.server.own_hosts():
            self._send(421, "text/plain", b"this console answers to its own address only\n")
            return
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(API_PREFIX):
            self._proxy()
        elif path == "/console.json":
            upstream = self.server.upstream
            about = {"mode": upstream.mode, "api": upstream.base_url}
            self._send(200, "application/json", json.dumps(about).encode())
        else:
            name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
            body = (
                self.server.static.get(name) if name == "index.html" or path.startswith("/static/") else None
            )
            if body is None:
                self._send(404, "text/plain", b"not found\n")
            else:
                self._send(200, _TYPES["." + name.rsplit(".", 1)[-1]], body)

    def do_HEAD(self) -> None:
        self._send(405, "text/plain", b"")

    def do_POST(self) -> None:
        self._send(405, "text/plain", b"the console only reads\n")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    def _proxy(self) -> None:
        status, headers, body = self.server.upstream.get(self.path.removeprefix(API_PREFIX[:-1]))
        passed = {k: v for k, v in headers.items() if k.title() in _PASSED_HEADERS}
        self._send(status, passed.pop("Content-Type", "application/json"), body, passed)

    def _send(self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header(
            "Content-Type",
            content_type
            if ";" in content_type or not content_type.startswith("text/")
            else f"{content_type}; charset=utf-8",
        )
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("console: " + format, *args)
