"""One endpoint for every AWS service of the local stack: moto's server, with AWS Batch's requests
handed to the Batch emulator instead of moto's own (empty) Batch.

A request is Batch's when its SigV4 credential scope names the service `batch`
(`Credential=<key>/<date>/<region>/batch/aws4_request`, in the Authorization header or a presigned
URL's X-Amz-Credential): that is how the AWS CLI and the SDKs sign it, whatever the endpoint's host,
and how moto itself tells services apart on one port.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import ThreadedMotoServer

# A Batch API request (POST to `path` with the body) and its answer: (status, headers, JSON body).
BatchAnswer = Callable[[str, bytes], tuple[int, dict[str, str], dict[str, Any]]]

_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Unavailable"}


def signed_service(environ: dict[str, Any]) -> str | None:
    """The service a request is signed for, from its credential scope; None if it is not signed."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        credential = query.get("X-Amz-Credential", [""])[0]
        found = _SCOPE.search(f"Credential={credential}")
    return found.group(1) if found else None


class BatchFront:
    """A WSGI app: Batch's requests to `batch` (set once the emulator serves), the rest to `moto`."""

    def __init__(self, moto: Callable[..., Iterable[bytes]]) -> None:
        self._moto = moto
        self.batch: BatchAnswer | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if signed_service(environ) != "batch":
            return self._moto(environ, start_response)
        import json

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        path = environ.get("PATH_INFO", "")
        if self.batch is None:
            status, headers, body = 503, {}, {"message": "the local Batch emulator is not serving yet"}
        elif environ.get("REQUEST_METHOD") != "POST":
            status, headers, body = 404, {"x-amzn-ErrorType": "ClientException"}, {"message": f"no {path}"}
        else:
            status, headers, body = self.batch(path, raw)
        data = json.dumps(body).encode()
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers.items()],
        )
        return [data]


class FrontedMotoServer(ThreadedMotoServer):
    """moto's threaded server with `BatchFront` before its app (moto 5's `_server_entry`, with the
    app wrapped)."""

    def __init__(self, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.front: BatchFront | None = None

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.front = BatchFront(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, self.front, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
