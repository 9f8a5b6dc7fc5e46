"""Admission: does a request fit its job type's rules and its tenant's data boundary? Pure; returns
the new Job or raises why not.

The tenant's in-flight quota is the one admission rule enforced elsewhere: by the store, in the
write that creates the job (see `admit`)."""

from __future__ import annotations

import re
from datetime import datetime

from batchplane.errors import ErrorDetail, InvalidRequest, RequestTooLarge, TenantNotAllowed
from batchplane.models.inputs import TENANT_NAME
from batchplane.models.job import Capacity, HistoryEntry, Job, JobStatus
from batchplane.models.pins import pins_json, pins_of
from batchplane.models.policy import Admission, CapacityPreference, JobType, PolicyDocument
from batchplane.models.request import JobRequest
from batchplane.policy.inputs import StackBuckets, input_problems
from batchplane.policy.outputs import output_prefix_for

# The pinned inputs reach the worker in its environment (BATCHPLANE_INPUTS). ECS, which runs Batch's
# containers, limits a task's overrides to 8,192 characters in all: the pins get half of that.
MAX_PINNED_INPUTS_BYTES = 4096


def job_type_of(policy: PolicyDocument, name: str) -> JobType:
    job_type = policy.job_types.get(name)
    if job_type is None:
        known = ", ".join(sorted(policy.job_types))
        raise InvalidRequest(
            f"unknown job type {name!r}",
            [ErrorDetail("job_type", f"unknown job type {name!r}; known: {known}")],
        )
    return job_type


def _check_parameters(job_type_name: str, job_type: JobType, given: dict[str, str]) -> dict[str, str]:
    problems: list[ErrorDetail] = []
    for name in given:
        if name not in job_type.parameters:
            problems.append(ErrorDetail(f"parameters.{name}", f"not a parameter of job type {job_type_name}"))
    resolved: dict[str, str] = {}
    for name, rule in job_type.parameters.items():
        value = given.get(name, rule.default)
        if value is None:
            if rule.required:
                problems.append(ErrorDetail(f"parameters.{name}", "required"))
            continue
        if len(value) > rule.max_length:
            problems.append(ErrorDetail(f"parameters.{name}", f"longer than {rule.max_length} characters"))
        elif not re.fullmatch(rule.pattern, value):
            problems.append(ErrorDetail(f"parameters.{name}", f"does not match {rule.pattern}"))
        else:
            resolved[name] = value
    if problems:
        raise InvalidRequest(f"parameters do not fit job type {job_type_name}", problems)
    return resolved


def _check_resource(name: str, asked: int | None, default: int, maximum: int, job_type: str) -> int:
    value = default if asked is None else asked
    if value < 1 or value > maximum:
        raise InvalidRequest(
            f"{name} out of range",
            [ErrorDetail(name, f"{value} is outside 1..{maximum} for job type {job_type}")],
        )
    return value


def _check_limits(request: JobRequest, limits: Admission) -> None:
    """Size of the request and of each declared input, and whether the tenant may run the type."""
    if request.size_bytes > limits.max_request_bytes:
        raise RequestTooLarge(
            "request too large",
            [
                ErrorDetail(
                    "body",
                    f"{request.size_bytes} bytes is over {limits.max_request_bytes} for job type "
                    f"{request.job_type}",
                )
            ],
        )
    if not TENANT_NAME.fullmatch(request.tenant):
        raise TenantNotAllowed(
            "not a tenant name", [ErrorDetail("tenant", f"{request.tenant!r} is not a tenant name")]
        )
    if not limits.allows(request.tenant):
        raise TenantNotAllowed(
            "tenant not allowed",
            [ErrorDetail("job_type", f"tenant {request.tenant!r} may not run job type {request.job_type}")],
        )
    if limits.max_input_bytes is None:
        return
    for index, artifact in enumerate(request.inputs):
        if artifact.size is not None and artifact.size > limits.max_input_bytes:
            raise RequestTooLarge(
                "input too large",
                [
                    ErrorDetail(
                        f"inputs[{index}]",
                        f"{artifact.uri} is {artifact.size} bytes, over {limits.max_input_bytes} "
                        f"for job type {request.job_type}",
                    )
                ],
            )


def _check_pins(request: JobRequest) -> None:
    """The inputs' versions and ETags must fit the worker's environment."""
    size = len(pins_json(pins_of(request.inputs)).encode())
    if size > MAX_PINNED_INPUTS_BYTES:
        raise InvalidRequest(
            "too many pinned inputs",
            [
                ErrorDetail(
                    "inputs",
                    f"the versions and ETags pinned take {size} bytes as the worker gets them; "
                    f"at most {MAX_PINNED_INPUTS_BYTES} fit in a Batch job's environment",
                )
            ],
        )


def _resources(request: JobRequest, job_type: JobType) -> tuple[int, int]:
    """The vCPUs and MiB asked for, or the job type's defaults, within its maximums."""
    resources = job_type.resources
    vcpus = _check_resource(
        "vcpus", request.vcpus, resources.vcpus.default, resources.vcpus.max, request.job_type
    )
    memory = _check_resource(
        "memory_mib",
        request.memory_mib,
        resources.memory_mib.default,
        resources.memory_mib.max,
        request.job_type,
    )
    return vcpus, memory


def placed(policy: PolicyDocument, request: JobRequest) -> tuple[str, int]:
    """The job's fair share and scheduling priority: the tenant's share, and the priority asked for
    within the tenant's range (policy `scheduling`), or the range's default."""
    placement = policy.scheduling.placement(request.tenant)
    allowed = placement.priority
    if request.priority is None:
        return placement.share, allowed.default
    if not allowed.allows(request.priority):
        raise InvalidRequest(
            "priority out of range",
            [
                ErrorDetail(
                    "priority",
                    f"{request.priority} is outside {allowed.min}..{allowed.max}, the priorities tenant "
                    f"{request.tenant} may ask for",
                )
            ],
        )
    return placement.share, request.priority


def check_inputs(
    policy: PolicyDocument, tenant: str, parameters: dict[str, str], uris: list[str], buckets: StackBuckets
) -> None:
    """Refuse (422, naming each field) what the tenant may not have read for it: an S3 location in a
    parameter or in `inputs` outside its input sources (policy `inputs`), or another tenant's data."""
    problems = input_problems(policy.inputs, tenant, buckets, parameters=parameters, uris=uris)
    if problems:
        raise InvalidRequest("inputs outside the tenant's input sources", problems)


def admit(
    policy: PolicyDocument, request: JobRequest, *, job_id: str, now: datetime, buckets: StackBuckets
) -> Job:
    """Validate the request against its job type and its tenant's input sources and build the QUEUED
    job; raise on any breach.

    The tenant's in-flight limit (`admission.max_in_flight_per_tenant`) is not checked here: it needs
    the current count, so the store enforces it atomically, as a condition of the very write that
    creates the job (adapters/store.py::DynamoJobStore.create), and raises QuotaExceeded.
    """
    job_type = job_type_of(policy, request.job_type)
    _check_limits(request, job_type.admission)
    _check_pins(request)
    if request.array and job_type.array is None:
        raise InvalidRequest(
            "the job type is not submitted as array jobs",
            [ErrorDetail("array", f"job type {request.job_type} has no `array` section in the policy")],
        )
    parameters = _check_parameters(request.job_type, job_type, request.parameters)
    # Defaults too: a job reads what its resolved parameters say, whoever wrote them.
    check_inputs(policy, request.tenant, parameters, [a.uri for a in request.inputs], buckets)
    vcpus, memory = _resources(request, job_type)
    share, priority = placed(policy, request)
    capacity = Capacity.SPOT if job_type.capacity is CapacityPreference.SPOT_FIRST else Capacity.ON_DEMAND
    return Job(
        job_id=job_id,
        tenant=request.tenant,
        job_type=request.job_type,
        status=JobStatus.QUEUED,
        parameters=parameters,
        vcpus=vcpus,
        memory_mib=memory,
        capacity=capacity,
        inputs=[a.uri for a in request.inputs],
        output_prefix=output_prefix_for(buckets.artifacts, request.tenant, job_id),
        created_at=now,
        updated_at=now,
        artifacts=list(request.inputs),
        history=[
            HistoryEntry(
                at=now,
                event="admitted",
                reason=f"admitted from {request.source} as {request.job_type}: {vcpus} vCPU, {memory} MiB, "
                f"{capacity.value}, share {share} at priority {priority}",
            )
        ],
        idempotency_key=request.idempotency_key,
        source=request.source,
        share=share,
        priority=priority,
        coalesce=True if request.array else None,
    )
