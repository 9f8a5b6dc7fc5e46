"""The dispatch queues' adapter: SendMessageBatch within its limits, and no failure passed over."""

from __future__ import annotations

from typing import Any

import pytest

from batchplane.adapters.dispatch_queue import BATCH_BYTES, DispatchQueue
from batchplane.models.dispatch import DispatchMessage
from batchplane.models.job import Capacity


class RecordingSqs:
    """SendMessageBatch's requests kept; entries whose body holds `refuse` come back Failed."""

    def __init__(self, refuse: str = "") -> None:
        self.requests: list[dict[str, Any]] = []
        self.refuse = refuse

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append({"QueueUrl": QueueUrl, "Entries": Entries})
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for e in Entries
            if self.refuse and self.refuse in e["MessageBody"]
        ]
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": failed}


def message(n: int, *, coalesce: bool = True, padding: int = 0) -> DispatchMessage:
    return DispatchMessage(
        job_id=f"job-{n:03d}",
        attempt=1,
        tenant="analytics",
        job_type="checksum-manifest",
        parameters={"input": "s3://bucket/in/file.bin", "note": "x" * padding},
        vcpus=1,
        memory_mib=512,
        capacity=Capacity.SPOT,
        output_prefix=f"s3://bucket/outputs/analytics/job-{n:03d}/",
        coalesce_since=1_700_000_000.0 if coalesce else None,
    )


def test_messages_go_ten_a_request_to_their_own_queue_with_one_delay() -> None:
    # Given 23 first attempts of coalescible jobs and 3 others
    sqs = RecordingSqs()
    queue = DispatchQueue("https://sqs/dispatch", sqs, array_queue_url="https://sqs/array")  # type: ignore[arg-type]

    # When they are sent together with a delay past SQS's 900 s limit
    queue.send_all([message(n) for n in range(23)] + [message(n, coalesce=False) for n in range(3)], 1200)

    # Then each queue gets its own, at most ten a request, every entry delayed by SQS's longest
    assert [(r["QueueUrl"], len(r["Entries"])) for r in sqs.requests] == [
        ("https://sqs/array", 10),
        ("https://sqs/array", 10),
        ("https://sqs/array", 3),
        ("https://sqs/dispatch", 3),
    ]
    assert {e["DelaySeconds"] for r in sqs.requests for e in r["Entries"]} == {900}
    assert all(len({e["Id"] for e in r["Entries"]}) == len(r["Entries"]) for r in sqs.requests)


def test_a_request_never_carries_more_than_256_kib_of_bodies() -> None:
    # Given ten messages of ~60 KB each
    sqs = RecordingSqs()
    queue = DispatchQueue("https://sqs/dispatch", sqs, array_queue_url="https://sqs/array")  # type: ignore[arg-type]

    # When they are sent together
    queue.send_all([message(n, padding=60_000) for n in range(10)])

    # Then each request stays within SendMessageBatch's size limit: four, four and two
    sizes = [sum(len(e["MessageBody"].encode()) for e in r["Entries"]) for r in sqs.requests]
    assert [len(r["Entries"]) for r in sqs.requests] == [4, 4, 2]
    assert max(sizes) <= BATCH_BYTES


def test_an_entry_sqs_failed_raises_so_the_caller_retries() -> None:
    # Given SQS failing one entry of a batch
    sqs = RecordingSqs(refuse="job-004")
    queue = DispatchQueue("https://sqs/dispatch", sqs, array_queue_url="https://sqs/array")  # type: ignore[arg-type]

    # When five messages are sent together, then the failure is not passed over
    with pytest.raises(RuntimeError, match="1 of 5 messages not sent"):
        queue.send_all([message(n) for n in range(5)], 30)
