"""The dispatch queues (SQS): one message per attempt to submit, with a per-message delay for backoff.

A coalescible first attempt (`coalesce_since`) goes to the array queue, read by the coalescer
(service/coalesce.py); every other message, and every message of a stack without that queue, to the
dispatch queue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from batchplane.models.dispatch import DispatchMessage
from batchplane.service.ports import MAX_DISPATCH_DELAY_SECONDS

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

# SendMessageBatch's limits: ten entries, and 256 KiB of bodies in all (the limit of a message).
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024


class DispatchQueue:
    def __init__(self, queue_url: str, client: SQSClient, *, array_queue_url: str = "") -> None:
        self.queue_url = queue_url
        self.array_queue_url = array_queue_url
        self._client = client

    def _url(self, message: DispatchMessage) -> str:
        return self.array_queue_url if message.coalesce_since and self.array_queue_url else self.queue_url

    def send(self, message: DispatchMessage, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self._url(message),
            MessageBody=message.model_dump_json(),
            DelaySeconds=_delay(delay_seconds),
        )

    def send_all(self, messages: Sequence[DispatchMessage], delay_seconds: int = 0) -> None:
        """SendMessageBatch, ten a request (a tenth of SendMessage's requests: the coalescer defers a
        young group's messages all at once)."""
        by_queue: dict[str, list[str]] = {}
        for message in messages:
            by_queue.setdefault(self._url(message), []).append(message.model_dump_json())
        failed = 0
        for url, bodies in by_queue.items():
            for entries in _batches(bodies, _delay(delay_seconds)):
                failed += len(
                    self._client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
                )
        if failed:
            raise RuntimeError(f"{failed} of {len(messages)} messages not sent")


def _delay(seconds: int) -> int:
    return max(0, min(MAX_DISPATCH_DELAY_SECONDS, seconds))


def _batches(bodies: list[str], delay: int) -> Iterator[list[SendMessageBatchRequestEntryTypeDef]]:
    """SendMessageBatch's entries, within its count and size limits."""
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if entries and (len(entries) == BATCH_ENTRIES or size + length > BATCH_BYTES):
            yield entries
            entries, size = [], 0
        entries.append({"Id": str(len(entries)), "MessageBody": body, "DelaySeconds": delay})
        size += length
    if entries:
        yield entries
