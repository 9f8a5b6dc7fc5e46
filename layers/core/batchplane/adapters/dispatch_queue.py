"""The dispatch queues (SQS): one message per attempt to submit, with a per-message delay for backoff.

A coalescible first attempt (`coalesce_since`) goes to the array queue, read by the coalescer
(service/coalesce.py); every other message, and every message of a stack without that queue, to the
dispatch queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchplane.models.dispatch import DispatchMessage
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_sqs import SQSClient


class DispatchQueue:
    def __init__(self, queue_url: str, client: SQSClient, *, array_queue_url: str = "") -> None:
        self.queue_url = queue_url
        self.array_queue_url = array_queue_url
        self._client = client

    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self.array_queue_url
            if message.coalesce_since and self.array_queue_url
            else self.queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=max(0, min(MAX_DISPATCH_DELAY_SECONDS, delay_seconds)),
        )
