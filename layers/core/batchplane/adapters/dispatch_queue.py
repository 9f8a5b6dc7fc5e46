"""The dispatch queue (SQS): one message per attempt to submit, with a per-message delay for backoff."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchplane.models.dispatch import DispatchMessage
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_sqs import SQSClient


class DispatchQueue:
    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=max(0, min(MAX_DISPATCH_DELAY_SECONDS, delay_seconds)),
        )
