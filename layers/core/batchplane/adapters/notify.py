"""Telling people and programs: alerts on SNS, job events on an EventBridge bus.

Both are published from the outbox (service/outbox.py), at least once: every delivery of one owed
event carries the same `event_id` (an SNS message attribute and a field of the message's JSON; a field
of the job event's detail), by which a consumer drops a duplicate.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from batchplane.models.job import Job

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

EVENT_SOURCE = "batchplane"


def job_summary(job: Job) -> dict[str, Any]:
    """What an alert or a job event says about a job: who, what, and every attempt with its cause."""
    last = job.current_attempt
    return {
        "job_id": job.job_id,
        "tenant": job.tenant,
        "job_type": job.job_type,
        "status": job.status.value,
        "attempts": [
            {
                "number": a.number,
                "capacity": a.capacity.value,
                "memory_mib": a.memory_mib,
                "status": a.status.value,
                "failure_class": a.failure_class.value if a.failure_class else None,
                "status_reason": a.status_reason,
                "exit_code": a.exit_code,
                "batch_job_id": a.batch_job_id,
            }
            for a in job.attempts
        ],
        "last_log_stream": last.log_stream if last else None,
        "last_decision": job.history[-1].reason if job.history else None,
    }


class Notifier:
    def __init__(self, *, sns: SNSClient, topic_arn: str, events: EventBridgeClient, bus_name: str) -> None:
        self._sns = sns
        self._topic_arn = topic_arn
        self._events = events
        self._bus_name = bus_name

    def alert(self, subject: str, job: Job, *, event_id: str) -> None:
        summary = {**job_summary(job), "event_id": event_id}
        lines = [
            f"{subject}",
            f"job {job.job_id} ({job.job_type}) of tenant {job.tenant} is {job.status.value}",
            *(
                f"  attempt {a['number']} on {a['capacity']}: {a['status']} "
                f"{a['failure_class'] or ''} {a['status_reason'] or ''}".rstrip()
                for a in summary["attempts"]
            ),
            f"last log stream: {summary['last_log_stream'] or 'none'}",
            f"last decision: {summary['last_decision'] or 'none'}",
            f"event id: {event_id}",
            "",
            json.dumps(summary, indent=2),
        ]
        self._sns.publish(
            TopicArn=self._topic_arn,
            Subject=f"[batchplane] {subject}"[:100],
            Message="\n".join(lines),
            MessageAttributes={
                "tenant": {"DataType": "String", "StringValue": job.tenant},
                "job_type": {"DataType": "String", "StringValue": job.job_type},
                "event_id": {"DataType": "String", "StringValue": event_id},
            },
        )

    def job_event(self, detail_type: str, job: Job, *, event_id: str) -> None:
        response = self._events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps({**job_summary(job), "event_id": event_id}),
                    "EventBusName": self._bus_name,
                    "Resources": [],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused {detail_type} for {job.job_id}: {response['Entries']}")
