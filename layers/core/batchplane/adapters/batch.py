"""AWS Batch adapter: submit an attempt, find it again by name, terminate it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchplane.models.time import utc_now
from batchplane.observability import logger
from batchplane.policy.routing import Route
from batchplane.service.ports import BatchJobRef, BatchRefused

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_batch import BatchClient

    from batchplane.models.batch_event import BatchJobDetail
    from batchplane.models.waiting import QueueFront

DESCRIBE_BATCH = 100  # DescribeJobs takes at most 100 ids a call


class RateLimiter:
    """Paces calls to `rate` per second: a token bucket holding one token, so there is no burst.

    SubmitJob is limited to 50 TPS per account; each dispatcher instance takes its share so that
    reserved concurrency x rate stays under it, and throttling stays the exception.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        # One token: a burst of `rate` calls per instance at start would let reserved concurrency
        # x rate be exceeded in the first second.
        self._capacity = 1.0
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate
                self._sleep(wait)
                self._last = self._clock()
                self._tokens = 0.0
            else:
                self._tokens -= 1


class BatchGateway:
    def __init__(
        self,
        client: BatchClient,
        limiter: RateLimiter | None = None,
        *,
        read_limiter: RateLimiter | None = None,
    ) -> None:
        self._client = client
        self._limiter = limiter
        # DescribeJobs and GetJobQueueSnapshot share the account's Batch request rate with SubmitJob:
        # a sweep of 100,000 jobs (1,000 DescribeJobs) is paced rather than taking it all at once.
        self._read_limiter = read_limiter

    def submit(
        self,
        *,
        name: str,
        route: Route,
        parameters: dict[str, str],
        environment: dict[str, str],
        tags: dict[str, str],
        array_size: int | None = None,
    ) -> str:
        """SubmitJob (with `array_size`: an array job of that many children); returns the Batch job id.
        Throttling and 5xx are retried by botocore, then raised."""
        if self._limiter is not None:
            self._limiter.acquire()
        # An array's children share everything below; each finds its own work in the manifest.
        array: dict[str, Any] = {"arrayProperties": {"size": array_size}} if array_size else {}
        try:
            response = self._client.submit_job(
                **array,
                jobName=name,
                jobQueue=route.queue,
                jobDefinition=route.job_definition,
                # Both queues are fair share (template.yaml, SchedulingPolicy): these are required.
                shareIdentifier=route.share,
                schedulingPriorityOverride=route.priority,
                parameters=parameters,
                containerOverrides={
                    "resourceRequirements": [
                        {"type": "VCPU", "value": str(route.vcpus)},
                        {"type": "MEMORY", "value": str(route.memory_mib)},
                    ],
                    "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                },
                timeout={"attemptDurationSeconds": route.timeout_seconds},
                # batchplane decides retries itself, by failure class; Batch's own would blind it.
                retryStrategy={"attempts": 1},
                tags=tags,
                propagateTags=True,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ClientException":
                raise BatchRefused(error.response["Error"].get("Message", "ClientException")) from error
            raise
        return str(response["jobId"])

    def find_by_name(self, queue: str, name: str) -> list[BatchJobRef]:
        """Batch jobs of a queue with exactly this name, in any state (ListJobs with a JOB_NAME filter)."""
        found: list[BatchJobRef] = []
        paginator = self._client.get_paginator("list_jobs")
        for page in paginator.paginate(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}]):
            found.extend(
                BatchJobRef(job_id=j["jobId"], status=j["status"])
                for j in page.get("jobSummaryList", [])
                # An array's children share its name; Batch lists only the parent by queue, moto
                # lists the children too ("<parent>:<index>"): the parent is the job found.
                if j.get("jobName") == name and ":" not in j["jobId"]
            )
        return found

    def terminate(self, batch_job_id: str, reason: str) -> None:
        """TerminateJob stops a running job and cancels one that has not started yet."""
        self._client.terminate_job(jobId=batch_job_id, reason=reason[:1024])

    def describe(self, batch_job_ids: list[str]) -> list[BatchJobDetail]:
        """DescribeJobs, 100 ids a call; jobs Batch no longer knows are simply absent."""
        # Imported here: of the functions, only the sweeper describes jobs.
        from batchplane.models.batch_event import BatchJobDetail

        found: list[BatchJobDetail] = []
        for start in range(0, len(batch_job_ids), DESCRIBE_BATCH):
            if self._read_limiter is not None:
                self._read_limiter.acquire()
            response = self._client.describe_jobs(jobs=batch_job_ids[start : start + DESCRIBE_BATCH])
            found.extend(BatchJobDetail.model_validate(job) for job in response.get("jobs", []))
        return found

    def front_of_queue(self, queue: str) -> QueueFront | None:
        """GetJobQueueSnapshot: the queue's first 100 RUNNABLE jobs in the order Batch starts them.
        None when Batch does not answer: a job's place is shown where known, and the sweep that asks
        goes on without it."""
        from batchplane.models.waiting import QueueFront

        if self._read_limiter is not None:
            self._read_limiter.acquire()
        try:
            front = self._client.get_job_queue_snapshot(jobQueue=queue).get("frontOfQueue", {})
        except ClientError as error:
            reason = error.response.get("Error", {})
            logger.warning("no snapshot of the job queue", extra={"queue": queue, "reason": reason})
            return None
        updated = front.get("lastUpdatedAt")
        return QueueFront(
            queue=queue,
            # A job's ARN ends with its id: arn:aws:batch:<region>:<account>:job/<job id>.
            batch_job_ids=[job["jobArn"].rsplit("/", 1)[-1] for job in front.get("jobs", [])],
            as_of=datetime.fromtimestamp(updated / 1000, UTC) if updated else utc_now(),
        )
