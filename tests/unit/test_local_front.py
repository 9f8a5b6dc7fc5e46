"""The local stack's one AWS endpoint (local/front.py): a request signed for Batch goes to the
emulator, anything else to moto, whatever its path."""

from __future__ import annotations

import io
from typing import Any

import pytest

from batchplane_tools.local.front import BatchFront, signed_service

BATCH_AUTH = (
    "AWS4-HMAC-SHA256 Credential=local/20261201/us-east-1/batch/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=abc"
)
S3_AUTH = BATCH_AUTH.replace("/batch/", "/s3/")


def _call(front: BatchFront, **environ: Any) -> tuple[str, bytes]:
    started: list[str] = []
    body = b"".join(front(environ, lambda status, headers: started.append(status)))
    return started[0], body


@pytest.mark.parametrize(
    ("environ", "service"),
    [
        ({"HTTP_AUTHORIZATION": BATCH_AUTH}, "batch"),
        ({"HTTP_AUTHORIZATION": S3_AUTH}, "s3"),
        ({"QUERY_STRING": "X-Amz-Credential=local%2F20261201%2Fus-east-1%2Fbatch%2Faws4_request"}, "batch"),
        ({}, None),
    ],
)
def test_the_service_is_read_from_the_credential_scope(environ: dict[str, str], service: str | None) -> None:
    assert signed_service(environ) == service


def test_batch_signed_requests_go_to_the_emulator_and_the_rest_to_moto() -> None:
    # Given a front over a moto stand-in, with the emulator serving
    to_moto: list[str] = []

    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        to_moto.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"moto"]

    front = BatchFront(moto)
    asked: list[tuple[str, bytes]] = []
    front.batch = lambda path, raw: (asked.append((path, raw)), (200, {}, {"jobQueues": []}))[1]

    # When a Batch request and an S3 request on a /v1/ path come in
    body = b'{"jobQueues": []}'
    batch_status, batch_body = _call(
        front,
        HTTP_AUTHORIZATION=BATCH_AUTH,
        REQUEST_METHOD="POST",
        PATH_INFO="/v1/describejobqueues",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(body)},
    )
    s3_status, s3_body = _call(
        front, HTTP_AUTHORIZATION=S3_AUTH, REQUEST_METHOD="GET", PATH_INFO="/v1/object"
    )

    # Then the emulator answers Batch's, with its body, and moto the other
    assert (batch_status, batch_body) == ("200 OK", b'{"jobQueues": []}')
    assert asked == [("/v1/describejobqueues", body)]
    assert (s3_status, s3_body, to_moto) == ("200 OK", b"moto", ["/v1/object"])


def test_batch_before_the_emulator_serves_is_503_not_motos_empty_batch() -> None:
    front = BatchFront(lambda environ, start_response: [b"moto"])

    status, body = _call(
        front, HTTP_AUTHORIZATION=BATCH_AUTH, REQUEST_METHOD="POST", PATH_INFO="/v1/listjobs"
    )

    assert status.startswith("503") and b"not serving yet" in body
