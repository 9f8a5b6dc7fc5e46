"""A submitted Batch job run as its job definition says: the example worker, in-process, with the job
role's credentials in its environment (as ECS gives a container its task role); and what the ECS agent
does with the execution role to start it (pull the image from ECR, create and write the awslogs
stream), described as requests: the agent is not a client here."""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from batchplane_tools.iam.evaluator import Request
from batchplane_tools.local.template import ACCOUNT, REGION, job_definition
from tests.iam.harness import IamStack

WORKER = "worker (job role)"
AGENT = "ECS agent (execution role)"
_ECR_IMAGE = re.compile(
    r"(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[^:@]+)"
)
_DEFAULT_LOG_GROUP = "/aws/batch/job"  # awslogs without an awslogs-group option, on Batch


def _definition(iam: IamStack, name: str) -> tuple[str, dict[str, Any]]:
    name = name.rsplit("/", 1)[-1].split(":", maxsplit=1)[0]
    [(logical, props)] = [
        (logical, props)
        for logical, props in iam.stack.resources("AWS::Batch::JobDefinition")
        if iam.stack.resolve(props["JobDefinitionName"]) == name
    ]
    return logical, props


def _agent(iam: IamStack, logical: str, props: Mapping[str, Any], batch_job_id: str) -> None:
    container = props["ContainerProperties"]
    image = str(iam.stack.resolve(container["Image"]))
    keys = {"aws:SecureTransport": ("true",)}
    requests: list[Request] = []
    if ecr := _ECR_IMAGE.match(image):
        repository = f"arn:aws:ecr:{ecr['region']}:{ecr['registry']}:repository/{ecr['repository']}"
        requests.append(Request("ecr:GetAuthorizationToken", "*", keys))
        pulls = ("ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer")
        requests += [Request(action, repository, keys) for action in pulls]
    options = container.get("LogConfiguration", {}).get("Options", {})
    group = iam.stack.resolve(options.get("awslogs-group", _DEFAULT_LOG_GROUP))
    name = iam.stack.resolve(props["JobDefinitionName"])
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:{name}/default/{batch_job_id}"
    requests += [Request("logs:CreateLogStream", stream, keys), Request("logs:PutLogEvents", stream, keys)]
    iam.recorder.add(iam.runs_as[f"{logical}/execution"], AGENT, "ecs:start container", requests)


def run_job(iam: IamStack, submitted: Mapping[str, Any], batch_job_id: str, attempt: int = 1) -> int:
    """Run the job SubmitJob was given (`submitted`: its parameters), as Batch would; its exit code."""
    logical, props = _definition(iam, submitted["jobDefinition"])
    definition = job_definition(iam.stack, props)
    parameters = {**definition.parameters, **submitted.get("parameters", {})}
    argv = [
        parameters.get(a.removeprefix("Ref::"), a) if a.startswith("Ref::") else a for a in definition.command
    ]
    if argv[:2] != ["python", "-m"]:
        raise ValueError(f"{logical} does not run a worker module: {argv}")
    overrides = submitted.get("containerOverrides", {}).get("environment", [])
    environment = {e["name"]: e["value"] for e in overrides}
    credentials = iam.credentials(iam.runs_as[logical])
    environment |= {
        "AWS_BATCH_JOB_ID": batch_job_id,
        "AWS_BATCH_JOB_ATTEMPT": str(attempt),
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    _agent(iam, logical, props, batch_job_id)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        boto3.setup_default_session()
        iam.recorder.attach(boto3.DEFAULT_SESSION, iam.runs_as[logical], WORKER)
        code: int = importlib.import_module(argv[2]).main(argv[3:])
    return code
