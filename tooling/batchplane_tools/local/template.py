"""Reads template.yaml and provisions its data-plane resources on an AWS endpoint (moto).

The local stack and the tests build their tables, queues, buckets and Batch queues from the template
itself, so the names, keys and indexes the code relies on are the ones production gets. moto's
CloudFormation cannot run the SAM transform, and its Batch wants real networking for managed compute
environments, so this does what a deploy would do for the resources the handlers touch.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from batchplane_tools.emulator.specs import FairShareSpec

REGION = "us-east-1"
ACCOUNT = "123456789012"


# libyaml's parser when PyYAML has it: the same documents, about 7x faster than the pure-Python one
# on template.yaml (35 ms against 230), and every test's stack is read from it.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[misc]  # a base chosen at import
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as their long form."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """The template as data, a copy of its own for each caller (callers resolve and edit it)."""
    return copy.deepcopy(_parsed(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=8)
def _parsed(text: str) -> dict[str, Any]:
    # Keyed by the text itself (reading it is ~0.1 ms; parsing, 35): an edit is always read again,
    # whatever the file system's clock. _CfnLoader is a SafeLoader: no arbitrary objects are built.
    loaded: dict[str, Any] = yaml.load(text, Loader=_CfnLoader)
    return loaded


@dataclass
class Stack:
    """A provisioned copy of the template: what each logical id resolved to."""

    name: str
    template: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Resolve Ref, Fn::Sub, Fn::GetAtt and Fn::Join against what has been provisioned."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                return self.attributes[(arg[0], arg[1])]
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return re.sub(
                    r"\$\{([^}!]+)\}",
                    lambda m: self._sub(m.group(1), {k: self.resolve(v) for k, v in extra.items()}),
                    text,
                )
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in arg[1])
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str, extra: dict[str, Any]) -> str:
        if name in extra:
            return str(extra[name])
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self.attributes[(logical, attribute)]
        return self._ref(name)

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::StackName": self.name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.refs:
            return self.refs[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            default = parameter["Default"]
            return ",".join(default) if isinstance(default, list) else str(default)
        raise KeyError(f"{name} is not provisioned (or has no default)")

    def resources(self, type_name: str) -> list[tuple[str, dict[str, Any]]]:
        """Each resource of the type and its properties; a function's event settings given by a stack
        parameter (the coalescer's `BatchSize: !Ref ArrayBatchSize`) read as that parameter's value."""
        return [
            (logical, self._events_with_parameters(resource.get("Properties", {})))
            for logical, resource in self.template["Resources"].items()
            if resource["Type"] == type_name
        ]

    def _events_with_parameters(self, properties: dict[str, Any]) -> dict[str, Any]:
        events = properties.get("Events")
        if not isinstance(events, dict):
            return properties
        parameters = self.template.get("Parameters", {})

        def value(setting: Any) -> Any:
            named = isinstance(setting, dict) and list(setting) == ["Ref"] and setting["Ref"] in parameters
            return self._ref(setting["Ref"]) if named else setting

        return {
            **properties,
            "Events": {
                name: {
                    **event,
                    "Properties": {k: value(v) for k, v in (event.get("Properties") or {}).items()},
                }
                for name, event in events.items()
            },
        }

    def function_environment(self, logical_id: str | None = None) -> dict[str, str]:
        """The environment a function gets: Globals merged with the function's own variables."""
        variables = dict(
            self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        if logical_id is not None:
            own = self.template["Resources"][logical_id].get("Properties", {}).get("Environment", {})
            variables.update(own.get("Variables", {}))
        return {k: str(self.resolve(v)) for k, v in variables.items()}

    def outputs(self) -> dict[str, str]:
        resolved: dict[str, str] = {}
        for name, output in self.template.get("Outputs", {}).items():
            try:
                resolved[name] = str(self.resolve(output["Value"]))
            except KeyError:
                continue  # an output of a resource the local stack does not provision (API, functions)
        return resolved


def _physical_name(stack: str, logical: str) -> str:
    return f"{stack}-{logical}".lower()


def provision(
    template_path: Path, session: Any, stack_name: str = "batchplane-local", *, batch: bool = True
) -> Stack:
    """Create the template's buckets, tables (with their streams), queues, topics, buses and secrets, and wire
    the buckets' notifications; with `batch`, also the Batch queues and job definitions (on moto's
    Batch)."""
    stack = Stack(name=stack_name, template=load_template(template_path))
    _provision_buckets(stack, session.client("s3"))
    _provision_tables(stack, session.client("dynamodb"))
    _provision_queues(stack, session.client("sqs"))
    _provision_topics(stack, session.client("sns"))
    _provision_buses(stack, session.client("events"))
    _provision_secrets(stack, session.client("secretsmanager"))
    _apply_bucket_notifications(stack, session.client("s3"))
    if batch:
        _provision_batch(stack, session.client("batch"), session.client("iam"))
    return stack


def bucket_notifications(stack: Stack, props: dict[str, Any]) -> dict[str, Any] | None:
    """A bucket's NotificationConfiguration as PutBucketNotificationConfiguration takes it (its queue
    notifications, resolved against `stack`, and whether it sends its events to EventBridge), or
    None for a bucket that notifies nothing."""
    config = props.get("NotificationConfiguration")
    if not config:
        return None
    queues = [
        {
            "QueueArn": stack.resolve(q["Queue"]),
            "Events": [q["Event"]],
            **({"Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}}} if "Filter" in q else {}),
        }
        for q in config.get("QueueConfigurations", [])
    ]
    notifications: dict[str, Any] = {"QueueConfigurations": queues} if queues else {}
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        notifications["EventBridgeConfiguration"] = {}
    return notifications


def _apply_bucket_notifications(stack: Stack, s3: Any) -> None:
    """moto's CloudFormation drops NotificationConfiguration; apply it as a deploy would."""
    for logical, props in stack.resources("AWS::S3::Bucket"):
        config = bucket_notifications(stack, props)
        if config is not None:
            s3.put_bucket_notification_configuration(
                Bucket=stack.refs[logical], NotificationConfiguration=config
            )


def _provision_buckets(stack: Stack, s3: Any) -> None:
    for logical, props in stack.resources("AWS::S3::Bucket"):
        name = stack.resolve(props.get("BucketName")) or _physical_name(stack.name, logical)
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        stack.refs[logical] = name
        stack.attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"


def _provision_tables(stack: Stack, dynamodb: Any) -> None:
    for logical, props in stack.resources("AWS::DynamoDB::Table"):
        name = stack.resolve(props.get("TableName")) or _physical_name(stack.name, logical)
        indexes = [
            {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
            for index in props.get("GlobalSecondaryIndexes", [])
        ]
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if indexes:
            request["GlobalSecondaryIndexes"] = indexes
        stream = props.get("StreamSpecification")
        if stream:  # the outbox's delivery path (the functions' DynamoDB events read it)
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        description = dynamodb.create_table(**request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:  # moto's CloudFormation drops TTL; apply it as a deploy would
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        stack.refs[logical] = name
        stack.attributes[(logical, "Arn")] = description["TableArn"]
        if stream:
            stack.attributes[(logical, "StreamArn")] = description["LatestStreamArn"]


def _provision_queues(stack: Stack, sqs: Any) -> None:
    # Queues without a redrive policy (the DLQs) first, so the others can point at them.
    queues = sorted(stack.resources("AWS::SQS::Queue"), key=lambda item: "RedrivePolicy" in item[1])
    for logical, props in queues:
        name = stack.resolve(props.get("QueueName")) or _physical_name(stack.name, logical)
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
        ):
            if key in props:
                attributes[key] = str(stack.resolve(props[key]))
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(stack.resolve(props["RedrivePolicy"]))
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        stack.refs[logical] = url
        stack.attributes[(logical, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        stack.attributes[(logical, "QueueName")] = name
        stack.attributes[(logical, "QueueUrl")] = url


def _provision_topics(stack: Stack, sns: Any) -> None:
    for logical, props in stack.resources("AWS::SNS::Topic"):
        name = stack.resolve(props.get("TopicName")) or _physical_name(stack.name, logical)
        arn = sns.create_topic(Name=name)["TopicArn"]
        stack.refs[logical] = arn
        stack.attributes[(logical, "TopicName")] = name


def _provision_buses(stack: Stack, events: Any) -> None:
    for logical, props in stack.resources("AWS::Events::EventBus"):
        name = stack.resolve(props["Name"])
        arn = events.create_event_bus(Name=name)["EventBusArn"]
        stack.refs[logical] = name
        stack.attributes[(logical, "Arn")] = arn
        stack.attributes[(logical, "Name")] = name


def generated_secret(props: dict[str, Any]) -> str:
    """A value as Secrets Manager's GenerateSecretString makes it (length, punctuation or not)."""
    spec = props.get("GenerateSecretString", {})
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation", False):
        alphabet += string.punctuation
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def _provision_secrets(stack: Stack, secretsmanager: Any) -> None:
    for logical, props in stack.resources("AWS::SecretsManager::Secret"):
        name = stack.resolve(props.get("Name")) or _physical_name(stack.name, logical)
        arn = secretsmanager.create_secret(Name=name, SecretString=generated_secret(props))["ARN"]
        stack.refs[logical] = arn  # Ref of a secret is its ARN


@dataclass(frozen=True)
class JobDefinition:
    """An AWS::Batch::JobDefinition's properties as the local stack uses them, resolved."""

    name: str
    image: str
    command: list[str]
    parameters: dict[str, str]  # default parameters
    resources: dict[str, int]  # ResourceRequirements: VCPU, MEMORY (MiB)
    timeout_seconds: int
    environment: dict[str, str]


def job_definition(stack: Stack, props: dict[str, Any]) -> JobDefinition:
    container = props.get("ContainerProperties", {})
    return JobDefinition(
        name=str(stack.resolve(props["JobDefinitionName"])),
        image=str(stack.resolve(container.get("Image", "local"))),
        command=[str(c) for c in container.get("Command", [])],
        parameters={k: str(v) for k, v in props.get("Parameters", {}).items()},
        resources={r["Type"]: int(r["Value"]) for r in container.get("ResourceRequirements", [])},
        timeout_seconds=int(props.get("Timeout", {}).get("AttemptDurationSeconds", 3600)),
        environment={e["Name"]: str(e["Value"]) for e in container.get("Environment", [])},
    )


def fair_share_spec(props: dict[str, Any]) -> FairShareSpec:
    """An AWS::Batch::SchedulingPolicy's FairsharePolicy, as the emulator applies it."""
    policy = props.get("FairsharePolicy") or {}
    return FairShareSpec(
        share_decay_seconds=int(policy.get("ShareDecaySeconds", 0)),
        compute_reservation=int(policy.get("ComputeReservation", 0)),
        weights={
            str(entry["ShareIdentifier"]): float(entry.get("WeightFactor", 1.0))
            for entry in policy.get("ShareDistribution") or []
        },
    )


def fairshare_policy(props: dict[str, Any]) -> dict[str, Any]:
    """An AWS::Batch::SchedulingPolicy's FairsharePolicy as CreateSchedulingPolicy takes it."""
    spec = fair_share_spec(props)
    return {
        "shareDecaySeconds": spec.share_decay_seconds,
        "computeReservation": spec.compute_reservation,
        "shareDistribution": [{"shareIdentifier": s, "weightFactor": w} for s, w in spec.weights.items()],
    }


def _provision_batch(stack: Stack, batch: Any, iam: Any) -> None:
    # Compute environments become UNMANAGED ones: moto would otherwise need real subnets and
    # instances. What matters to batchplane, the queues and their capacity, is kept.
    role_arn = iam.create_role(
        RoleName=f"{stack.name}-batch-service",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    for logical, props in stack.resources("AWS::Batch::ComputeEnvironment"):
        name = stack.resolve(props.get("ComputeEnvironmentName")) or _physical_name(stack.name, logical)
        arn = batch.create_compute_environment(
            computeEnvironmentName=name, type="UNMANAGED", state="ENABLED", serviceRole=role_arn
        )["computeEnvironmentArn"]
        stack.refs[logical] = arn
    for logical, props in stack.resources("AWS::Batch::SchedulingPolicy"):
        name = stack.resolve(props.get("Name")) or _physical_name(stack.name, logical)
        policy = batch.create_scheduling_policy(name=name, fairsharePolicy=fairshare_policy(props))
        stack.refs[logical] = policy["arn"]
    for logical, props in stack.resources("AWS::Batch::JobQueue"):
        name = stack.resolve(props["JobQueueName"])
        scheduling = (
            {"schedulingPolicyArn": stack.resolve(props["SchedulingPolicyArn"])}
            if "SchedulingPolicyArn" in props
            else {}
        )
        arn = batch.create_job_queue(
            **scheduling,
            jobQueueName=name,
            state="ENABLED",
            priority=int(props.get("Priority", 1)),
            computeEnvironmentOrder=[
                {"order": int(o["Order"]), "computeEnvironment": stack.resolve(o["ComputeEnvironment"])}
                for o in props["ComputeEnvironmentOrder"]
            ],
        )["jobQueueArn"]
        stack.refs[logical] = arn
    for logical, props in stack.resources("AWS::Batch::JobDefinition"):
        definition = job_definition(stack, props)
        arn = batch.register_job_definition(
            jobDefinitionName=definition.name,
            type="container",
            parameters=definition.parameters,
            containerProperties={
                "image": definition.image,
                "command": definition.command,
                "resourceRequirements": [
                    {"type": kind, "value": str(value)} for kind, value in definition.resources.items()
                ],
            },
            timeout={"attemptDurationSeconds": definition.timeout_seconds},
        )["jobDefinitionArn"]
        stack.refs[logical] = arn
