"""The dispatch queue (SQS): one message per attempt to submit, with a per-message delay for backoff."""

from __future__ import annotations

from typing import Any

from batchplane.models.dispatch import DispatchMessage

MAX_DELAY_SECONDS = 900  # SQS's limit; longer waits are kept by the sweeper


class DispatchQueue:
    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, delay_seconds)),
        )
