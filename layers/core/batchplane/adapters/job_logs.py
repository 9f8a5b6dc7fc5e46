"""The Batch jobs' logs in CloudWatch Logs (JobLogs): awslogs writes each attempt's container output
to the job definitions' log group (awslogs' default on Batch, /aws/batch/job), one stream an attempt,
named as the attempt's `container.logStreamName`; GetLogEvents reads it forward from the head.

The store's next token is CloudWatch's forward token in base64url, so the API can sign it as it signs
every page token (api/page_tokens.py: its payload is base64url).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol

from botocore.exceptions import ClientError

from batchplane.models.time import from_epoch_ms
from batchplane.service.ports import LogLine, LogNotFound, LogPage

# GetLogEvents returns at most 10,000 events (or 1 MB) a call.
MAX_EVENTS = 10_000


class LogsClient(Protocol):
    def get_log_events(self, **kwargs: Any) -> Any: ...


def _encode(token: str) -> str:
    return base64.urlsafe_b64encode(token.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a log token") from None


class CloudWatchJobLogs:
    def __init__(self, client: LogsClient, group: str) -> None:
        self._client = client
        self.group = group

    def where(self, stream: str) -> str:
        """The log group and stream, as CloudWatch's console and the AWS CLI name them."""
        return f"{self.group}/{stream}"

    def read(self, stream: str, *, limit: int, next_token: str | None = None) -> LogPage:
        """A page of the stream from the head (or from `next_token` on). CloudWatch gives the same
        forward token back once the stream has nothing more: that page is at its end."""
        request: dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamName": stream,
            "limit": min(limit, MAX_EVENTS),
            "startFromHead": True,
        }
        given = _decode(next_token) if next_token is not None else None
        if given is not None:
            request["nextToken"] = given
        try:
            answer = self._client.get_log_events(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise LogNotFound(self.where(stream)) from None
            raise
        lines = [
            LogLine(at=from_epoch_ms(int(event["timestamp"])), message=str(event.get("message", "")))
            for event in answer.get("events", [])
        ]
        forward = str(answer.get("nextForwardToken") or given or "")
        at_end = not forward or (not lines and forward == given)
        return LogPage(lines=lines, next_token=_encode(forward), at_end=at_end)
