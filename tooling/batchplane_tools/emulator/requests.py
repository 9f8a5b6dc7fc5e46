"""Batch's request bodies, parsed and validated as Batch does, and the ClientException it answers with.

Nothing here touches the job table: each parser returns what the scheduler needs, or raises
ClientException with Batch's message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchplane_tools.emulator.job import STATUSES, Job, SubmitRequest
from batchplane_tools.emulator.specs import DefinitionSpec, QueueSpec

DESCRIBE_MAX = 100
LIST_MAX_WITH_FILTER = 100
LIST_MAX_WITH_STATUS = 1000
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
# SubmitJob's shareIdentifier: up to 255 letters and digits, which may be followed by an asterisk.
SHARE_IDENTIFIER = re.compile(r"^[A-Za-z0-9]{1,255}\*?$")
MAX_SCHEDULING_PRIORITY = 9999
ARRAY_SIZES = range(2, 10_001)  # an array job has 2 to 10,000 children
UNSUPPORTED_SUBMIT_MEMBERS = (
    "dependsOn",
    "nodeOverrides",
    "eksPropertiesOverride",
    "ecsPropertiesOverride",
)

# An HTTP answer: status, extra headers, JSON body.
Reply = tuple[int, dict[str, str], dict[str, Any]]


class ClientException(Exception):
    """Answered as HTTP 400 with x-amzn-ErrorType: ClientException, as Batch does."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def reply(self) -> Reply:
        return self.status, {"x-amzn-ErrorType": "ClientException"}, {"message": self.message}


@dataclass(frozen=True)
class ListRequest:
    queue: QueueSpec | None  # the queue's jobs (no array children), or
    array_job_id: str | None  # an array job's children
    match: Callable[[Job], bool]
    limit: int
    before: int | None  # from nextToken: list only jobs submitted before this submission number


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as error:
        raise ClientException(f"The request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ClientException("The request body must be a JSON object")
    return body


def parse_submit(
    body: dict[str, Any], queues: list[QueueSpec], definitions: list[DefinitionSpec]
) -> SubmitRequest:
    name = body.get("jobName")
    if not isinstance(name, str) or not JOB_NAME.match(name):
        raise ClientException(
            "jobName must be 1 to 128 letters, numbers, hyphens and underscores, starting alphanumeric"
        )
    for unsupported in UNSUPPORTED_SUBMIT_MEMBERS:
        if body.get(unsupported):
            raise ClientException(f"{unsupported} is not supported by the local Batch emulator")
    job_queue = find_queue(queues, body.get("jobQueue"))
    definition = find_definition(definitions, body.get("jobDefinition"))
    given = body.get("parameters") or {}
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise ClientException("parameters must map names to strings")
    parameters = {**definition.parameters, **given}

    overrides = body.get("containerOverrides") or {}
    if not isinstance(overrides, dict):
        raise ClientException("containerOverrides must be an object")
    vcpus, memory_mib = _resources(definition, overrides)
    environment = _environment(definition, overrides)
    # A command element that is exactly Ref::name takes the parameter's value; without one it stays.
    command = [
        parameters.get(token[5:], token) if token.startswith("Ref::") else token
        for token in overrides.get("command") or definition.command
    ]
    timeout_seconds = _timeout(definition, body.get("timeout") or {})
    retry_strategy = _retry_strategy(body.get("retryStrategy"))
    tags = body.get("tags") or {}
    if not isinstance(tags, dict):
        raise ClientException("tags must be an object")
    share, priority = _fair_share(body, job_queue, definition)
    return SubmitRequest(
        name=name,
        queue=job_queue,
        definition=definition,
        parameters=parameters,
        command=command,
        environment=environment,
        vcpus=vcpus,
        memory_mib=memory_mib,
        timeout_seconds=timeout_seconds,
        retry_strategy=retry_strategy,
        tags={str(k): str(v) for k, v in tags.items()},
        propagate_tags=bool(body.get("propagateTags", False)),
        share_identifier=share,
        scheduling_priority=priority,
        array_size=_array_size(body.get("arrayProperties")),
    )


def _array_size(properties: Any) -> int | None:
    """arrayProperties.size, which Batch takes from 2 to 10,000 (no arrayProperties: a single job)."""
    if not properties:
        return None
    size = properties.get("size") if isinstance(properties, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size not in ARRAY_SIZES:
        raise ClientException(
            f"arrayProperties.size must be between {ARRAY_SIZES.start} and {ARRAY_SIZES.stop - 1}, got {size}"
        )
    return size


def _fair_share(body: dict[str, Any], queue: QueueSpec, definition: DefinitionSpec) -> tuple[str | None, int]:
    """The job's share and scheduling priority: a fair-share queue requires a share identifier, a
    FIFO queue takes neither (nor a definition with a scheduling priority), as Batch answers."""
    share = body.get("shareIdentifier")
    override = body.get("schedulingPriorityOverride")
    if queue.fair_share is None:
        if share is not None or override is not None or definition.scheduling_priority is not None:
            raise ClientException(
                "Job with shareIdentifier or schedulingPriority can only be submitted to job queue with "
                "fair share scheduling policy"
            )
        return None, 0
    if share is None:
        raise ClientException(
            f"shareIdentifier is required for job queue {queue.name} with a fair share policy"
        )
    if not isinstance(share, str) or not SHARE_IDENTIFIER.match(share):
        raise ClientException(
            "shareIdentifier must be up to 255 letters and digits, optionally followed by *"
        )
    if override is not None and (
        not isinstance(override, int)
        or isinstance(override, bool)
        or not 0 <= override <= MAX_SCHEDULING_PRIORITY
    ):
        raise ClientException(f"schedulingPriorityOverride must be between 0 and {MAX_SCHEDULING_PRIORITY}")
    priority = override if override is not None else definition.scheduling_priority
    return share, priority or 0


def _environment(definition: DefinitionSpec, overrides: dict[str, Any]) -> dict[str, str]:
    environment = dict(definition.environment)
    for variable in overrides.get("environment") or []:
        name = variable.get("name") if isinstance(variable, dict) else None
        if not isinstance(name, str) or not name:
            raise ClientException("containerOverrides.environment entries need a name")
        if name.startswith("AWS_BATCH"):
            raise ClientException("Environment variable names can't start with AWS_BATCH")
        environment[name] = str(variable.get("value", ""))
    return environment


def _timeout(definition: DefinitionSpec, timeout: dict[str, Any]) -> int | None:
    seconds = timeout.get("attemptDurationSeconds")
    if seconds is None:
        return definition.timeout_seconds if definition.timeout_seconds > 0 else None
    # Batch refuses less than 60 s; locally a short timeout is what tests need.
    if not isinstance(seconds, int) or seconds < 1:
        raise ClientException("timeout.attemptDurationSeconds must be a positive integer")
    return seconds


def _retry_strategy(retry: Any) -> dict[str, Any] | None:
    """Kept for DescribeJobs; the emulator runs one attempt whatever it says."""
    if not retry:
        return None
    attempts = retry.get("attempts", 1)
    if not isinstance(attempts, int) or not 1 <= attempts <= 10:
        raise ClientException("retryStrategy.attempts must be between 1 and 10")
    return {"attempts": attempts, "evaluateOnExit": list(retry.get("evaluateOnExit") or [])}


def _resources(definition: DefinitionSpec, overrides: dict[str, Any]) -> tuple[str, int]:
    vcpus = str(definition.vcpus)
    memory_mib = definition.memory_mib
    try:
        if overrides.get("vcpus") is not None:
            vcpus = str(int(overrides["vcpus"]))
        if overrides.get("memory") is not None:
            memory_mib = int(overrides["memory"])
        for requirement in overrides.get("resourceRequirements") or []:
            kind, value = requirement.get("type"), str(requirement.get("value"))
            if kind == "VCPU":
                if float(value) <= 0:
                    raise ValueError(value)
                vcpus = value
            elif kind == "MEMORY":
                memory_mib = int(value)
    except (TypeError, ValueError, AttributeError) as error:
        raise ClientException(f"Invalid resource requirement: {error}") from error
    if memory_mib < 1:
        raise ClientException("MEMORY must be at least 1 MiB")
    return vcpus, memory_mib


def find_queue(queues: list[QueueSpec], ref: Any) -> QueueSpec:
    """By name or ARN."""
    for spec in queues:
        if ref in (spec.name, spec.arn):
            return spec
    raise ClientException(f"Job queue {ref} does not exist")


def find_definition(definitions: list[DefinitionSpec], ref: Any) -> DefinitionSpec:
    """By ARN or name:revision; by name alone, the latest revision."""
    if isinstance(ref, str):
        exact = [d for d in definitions if ref in (d.arn, f"{d.name}:{d.revision}")]
        if exact:
            return exact[0]
        named = [d for d in definitions if d.name == ref]
        if named:
            return max(named, key=lambda d: d.revision)
    raise ClientException(f"Job definition {ref} does not exist")


def parse_describe_queues(body: dict[str, Any], queues: list[QueueSpec]) -> list[QueueSpec]:
    """The queues asked for by name or ARN (all when none are; unknown ones are not answered, as
    Batch does)."""
    refs = body.get("jobQueues") or []
    if not isinstance(refs, list):
        raise ClientException("jobQueues must be a list of job queue names or ARNs")
    return [q for q in queues if not refs or q.name in refs or q.arn in refs]


def parse_describe(body: dict[str, Any]) -> list[Any]:
    """The job ids asked for (unknown ones are simply not answered, as Batch does)."""
    ids = body.get("jobs") or []
    if not isinstance(ids, list):
        raise ClientException("jobs must be a list of job ids")
    if len(ids) > DESCRIBE_MAX:
        raise ClientException(f"jobs takes at most {DESCRIBE_MAX} job ids")
    return ids


def parse_list(body: dict[str, Any], queues: list[QueueSpec]) -> ListRequest:
    if body.get("multiNodeJobId"):
        raise ClientException("The local Batch emulator has no multi-node jobs")
    array_job_id = body.get("arrayJobId")
    if array_job_id is not None and body.get("jobQueue") is not None:
        raise ClientException("Specify only one of jobQueue, arrayJobId and multiNodeJobId")
    job_queue = None if array_job_id is not None else find_queue(queues, body.get("jobQueue"))
    filters = body.get("filters") or []
    if len(filters) > 1:
        raise ClientException("Only one filter can be used at a time")
    if filters:
        match = _filter(filters[0])
        limit = LIST_MAX_WITH_FILTER
    else:
        # A filter lists jobs in any status; without one, ListJobs lists one status (RUNNING by default).
        wanted = body.get("jobStatus") or "RUNNING"
        if wanted not in STATUSES:
            raise ClientException(f"jobStatus must be one of {', '.join(STATUSES)}")

        def match(job: Job) -> bool:
            return job.status == wanted

        limit = LIST_MAX_WITH_STATUS
    max_results = body.get("maxResults")
    if max_results is not None:
        if not isinstance(max_results, int) or max_results < 1:
            raise ClientException("maxResults must be at least 1")
        limit = min(limit, max_results)
    before: int | None = None
    token = body.get("nextToken")
    if token:
        try:
            before = int(token)
        except ValueError as error:
            raise ClientException("Invalid nextToken") from error
    return ListRequest(
        queue=job_queue,
        array_job_id=None if array_job_id is None else str(array_job_id),
        match=match,
        limit=limit,
        before=before,
    )


def _filter(spec: Any) -> Callable[[Job], bool]:
    if not isinstance(spec, dict) or not spec.get("values"):
        raise ClientException("A filter needs a name and one value")
    name, value = spec.get("name"), str(spec["values"][0])
    if name == "JOB_NAME":
        wanted = value.lower()
        if wanted.endswith("*"):
            return lambda job: job.name.lower().startswith(wanted[:-1])
        return lambda job: job.name.lower() == wanted
    if name == "JOB_DEFINITION":
        if value.startswith("arn:"):
            return lambda job: job.definition.arn == value
        if value.endswith("*"):
            return lambda job: job.definition.name.startswith(value[:-1])
        return lambda job: value in (job.definition.name, f"{job.definition.name}:{job.definition.revision}")
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        try:
            at = int(value)
        except ValueError as error:
            raise ClientException(f"{name} takes epoch milliseconds") from error
        if name == "BEFORE_CREATED_AT":
            return lambda job: job.created_at < at
        return lambda job: job.created_at > at
    raise ClientException(f"Unsupported filter {name}")


def parse_end(body: dict[str, Any]) -> tuple[str, str]:
    """TerminateJob's and CancelJob's job id and (required) reason."""
    job_id, reason = body.get("jobId"), body.get("reason")
    if not isinstance(reason, str) or not reason:
        raise ClientException("reason is required")
    # A job id that is no string finds no job, and "Job <it> does not exist" names it as given.
    return str(job_id), reason
