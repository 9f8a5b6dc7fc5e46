"""A job as Batch shows it: DescribeJobs' detail (also the "Batch Job State Change" event's detail),
ListJobs' summary and one attempt. Key order follows Batch's own answers.

Callers hold the scheduler's lock: these read a job that the scheduler thread changes.
"""

from __future__ import annotations

import copy
from typing import Any

from batchplane_tools.emulator.arrays import detail_properties, summary_properties
from batchplane_tools.emulator.job import Job, now_ms
from batchplane_tools.emulator.specs import QueueSpec


def exit_fields(job: Job) -> dict[str, Any]:
    """The container's exit code and reason, each only once there is one to report."""
    found: dict[str, Any] = {}
    if job.exit_code is not None:
        found["exitCode"] = job.exit_code
    if job.reason is not None:
        found["reason"] = job.reason
    return found


def detail(job: Job) -> dict[str, Any]:
    """The job as DescribeJobs returns it (and as the event's detail carries it)."""
    found: dict[str, Any] = {
        "jobArn": job.arn,
        "jobName": job.name,
        "jobId": job.job_id,
        "jobQueue": job.queue.arn,
        "status": job.status,
    }
    if job.share_identifier is not None:  # fair-share queues' jobs only, as Batch shows them
        found["shareIdentifier"] = job.share_identifier
        found["schedulingPriority"] = job.scheduling_priority
    found["attempts"] = copy.deepcopy(job.attempts)
    if job.status_reason is not None:
        found["statusReason"] = job.status_reason
    found["createdAt"] = job.created_at
    if job.retry_strategy is not None:
        found["retryStrategy"] = copy.deepcopy(job.retry_strategy)
    if job.started_at is not None:
        found["startedAt"] = job.started_at
    if job.stopped_at is not None:
        found["stoppedAt"] = job.stopped_at
    if (array_properties := detail_properties(job)) is not None:
        found["arrayProperties"] = array_properties
    found["dependsOn"] = []
    found["jobDefinition"] = job.definition.arn
    found["parameters"] = dict(job.parameters)
    found["container"] = _container(job)
    if job.timeout_seconds is not None:
        found["timeout"] = {"attemptDurationSeconds": job.timeout_seconds}
    if job.tags:
        found["tags"] = {"resourceArn": job.arn, **job.tags}
    found["propagateTags"] = job.propagate_tags
    found["platformCapabilities"] = ["EC2"]
    found["eksAttempts"] = []
    found["isCancelled"] = job.is_cancelled
    found["isTerminated"] = job.is_terminated
    return found


def _container(job: Job) -> dict[str, Any]:
    container: dict[str, Any] = {
        "image": "local",
        "command": list(job.command),
        "volumes": [],
        "environment": [{"name": k, "value": v} for k, v in job.environment.items()],
        "mountPoints": [],
        "readonlyRootFilesystem": False,
        "ulimits": [],
        "privileged": False,
    }
    container.update(exit_fields(job))
    if job.task_arn is not None:
        container["containerInstanceArn"] = job.container_instance_arn
        container["taskArn"] = job.task_arn
    if job.log_stream_name is not None:
        container["logStreamName"] = job.log_stream_name
    container["networkInterfaces"] = []
    container["resourceRequirements"] = [
        {"value": job.vcpus, "type": "VCPU"},
        {"value": str(job.memory_mib), "type": "MEMORY"},
    ]
    container["logConfiguration"] = {"logDriver": "awslogs", "options": {}, "secretOptions": []}
    container["secrets"] = []
    return container


def summary(job: Job) -> dict[str, Any]:
    """The job as ListJobs lists it."""
    found: dict[str, Any] = {
        "jobArn": job.arn,
        "jobId": job.job_id,
        "jobName": job.name,
        "createdAt": job.created_at,
        "status": job.status,
    }
    if (array_properties := summary_properties(job)) is not None:
        found["arrayProperties"] = array_properties
    if job.status_reason is not None:
        found["statusReason"] = job.status_reason
    if job.started_at is not None:
        found["startedAt"] = job.started_at
    if job.stopped_at is not None:
        found["stoppedAt"] = job.stopped_at
    found["container"] = exit_fields(job)
    found["jobDefinition"] = job.definition.arn
    found["isCancelled"] = job.is_cancelled
    found["isTerminated"] = job.is_terminated
    return found


def attempt(job: Job, status_reason: str) -> dict[str, Any]:
    """The attempt that ends now, for the job's attempts list."""
    container: dict[str, Any] = {
        "containerInstanceArn": job.container_instance_arn,
        "taskArn": job.task_arn,
        **exit_fields(job),
    }
    if job.log_stream_name is not None:
        container["logStreamName"] = job.log_stream_name
    container["networkInterfaces"] = []
    found: dict[str, Any] = {"container": container}
    if job.started_at is not None:
        found["startedAt"] = job.started_at
    found["stoppedAt"] = now_ms()
    found["statusReason"] = status_reason
    return found


def job_queue(queue: QueueSpec) -> dict[str, Any]:
    """A job queue as DescribeJobQueues returns it; its compute environment is the emulator's own."""
    environment = "local-spot" if queue.capacity == "SPOT" else "local-on-demand"
    arn_prefix = queue.arn.split(":job-queue/", 1)[0]
    return {
        "jobQueueName": queue.name,
        "jobQueueArn": queue.arn,
        "state": "ENABLED",
        "status": "VALID",
        "statusReason": "JobQueue Healthy",
        "priority": 1,
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": f"{arn_prefix}:compute-environment/{environment}"}
        ],
        "tags": {},
        "jobStateTimeLimitActions": [],
    }
