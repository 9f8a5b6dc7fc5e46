"""AWS Batch for the local stack: the emulator's job queues and job definitions from the template, and
its job state changes put on the event bus."""

from __future__ import annotations

import json
from typing import Any

from batchplane_tools.emulator import DefinitionSpec, QueueSpec, TimeLimitAction
from batchplane_tools.emulator.events import QUEUE_BLOCKED, STATE_CHANGE
from batchplane_tools.local.template import ACCOUNT, REGION, Stack, fair_share_spec, job_definition


def batch_specs(stack: Stack) -> tuple[list[QueueSpec], list[DefinitionSpec]]:
    """Job queues (with the capacity of their compute environments) and job definitions, from
    the template; their ARNs become the stack's refs, as a deploy would make them."""
    capacity_of: dict[str, str] = {}
    for logical, props in stack.resources("AWS::Batch::ComputeEnvironment"):
        kind = str(props.get("ComputeResources", {}).get("Type", "EC2"))
        capacity_of[logical] = "SPOT" if "SPOT" in kind else "ON_DEMAND"
        stack.refs[logical] = f"arn:aws:batch:{REGION}:{ACCOUNT}:compute-environment/{logical}"
    policies = {
        logical: fair_share_spec(props) for logical, props in stack.resources("AWS::Batch::SchedulingPolicy")
    }
    queues = []
    for logical, props in stack.resources("AWS::Batch::JobQueue"):
        name = str(stack.resolve(props["JobQueueName"]))
        arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}"
        first = sorted(props["ComputeEnvironmentOrder"], key=lambda o: int(o["Order"]))[0]
        environment = first["ComputeEnvironment"].get("Ref", "")
        policy = policies[props["SchedulingPolicyArn"]["Ref"]] if "SchedulingPolicyArn" in props else None
        actions = tuple(
            TimeLimitAction(reason=str(a["Reason"]), max_time_seconds=float(a["MaxTimeSeconds"]))
            for a in props.get("JobStateTimeLimitActions", [])
            if a.get("Action") == "CANCEL" and a.get("State") == "RUNNABLE"
        )
        queues.append(
            QueueSpec(
                name=name,
                arn=arn,
                capacity=capacity_of.get(environment, "ON_DEMAND"),
                fair_share=policy,
                time_limit_actions=actions,
            )
        )
        stack.refs[logical] = arn
    definitions = []
    for logical, props in stack.resources("AWS::Batch::JobDefinition"):
        definition = job_definition(stack, props)
        arn = f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{definition.name}:1"
        definitions.append(
            DefinitionSpec(
                name=definition.name,
                arn=arn,
                command=definition.command,
                parameters=definition.parameters,
                vcpus=definition.resources.get("VCPU", 1),
                memory_mib=definition.resources.get("MEMORY", 512),
                timeout_seconds=definition.timeout_seconds,
                environment=definition.environment,
                scheduling_priority=props.get("SchedulingPriority"),
            )
        )
        stack.refs[logical] = arn
    return queues, definitions


def put_batch_event(events: Any, detail: dict[str, Any], detail_type: str = STATE_CHANGE) -> None:
    """One of the emulator's events onto the event bus, as Batch's go in AWS: a queue-blocked event
    names the job and its queue in `resources`."""
    resources = [detail["jobArn"]] + ([detail["jobQueue"]] if detail_type == QUEUE_BLOCKED else [])
    events.put_events(
        Entries=[
            {
                "Source": "aws.batch",
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "Resources": resources,
            }
        ]
    )
