"""Reading an attempt's log: where Batch's log driver put it (the stream recorded on the attempt from
its RUNNING or terminal event) and its lines, page by page."""

from __future__ import annotations

from dataclasses import dataclass

from batchplane.errors import ErrorDetail, JobNotFound
from batchplane.service.jobs import get_job
from batchplane.service.ports import JobLogs, LogLine, LogNotFound, Ports


@dataclass(frozen=True)
class AttemptLog:
    job_id: str
    attempt: int
    where: str
    lines: list[LogLine]
    next_token: str | None  # None: the attempt has ended and its log is read to the end


def attempt_log(
    ports: Ports,
    logs: JobLogs,
    tenant: str,
    job_id: str,
    number: int,
    *,
    limit: int,
    next_token: str | None = None,
) -> AttemptLog:
    """A page of the log of the tenant's job's attempt `number`. While the attempt runs, the last
    page still carries a token: asked again later, it gives the lines written since."""
    job = get_job(ports, tenant, job_id)  # another tenant's job is not found
    attempt = job.attempt(number)
    if attempt is None:
        raise JobNotFound(
            f"job {job_id} has no attempt {number}",
            [ErrorDetail("attempt", f"job {job_id} has {len(job.attempts)} attempt(s)")],
        )
    if attempt.log_stream is None:
        raise JobNotFound(
            f"attempt {number} of job {job_id} has no log",
            [ErrorDetail("log", f"attempt {number} has not started running ({attempt.status.value})")],
        )
    try:
        page = logs.read(attempt.log_stream, limit=limit, next_token=next_token)
    except LogNotFound:
        raise JobNotFound(
            f"the log of attempt {number} of job {job_id} does not exist",
            [
                ErrorDetail(
                    "log", f"{logs.where(attempt.log_stream)} does not exist (not written yet, or expired)"
                )
            ],
        ) from None
    # A cancelled job's attempt may never hear its end from Batch: the job's end is the attempt's too.
    ended = attempt.status.is_terminal or job.status.is_terminal
    return AttemptLog(
        job_id=job_id,
        attempt=number,
        where=logs.where(attempt.log_stream),
        lines=page.lines,
        next_token=None if ended and page.at_end else page.next_token,
    )
