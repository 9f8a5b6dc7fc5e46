"""template.yaml on in-process moto with IAM enforced, each role acting with its own credentials.

moto checks every call's signature and action, and the resource of S3 and SQS calls, against the role's
policies (`batchplane_tools.iam.roles.moto_view`); every call is also recorded as IAM requests for the
evaluator, which checks what moto cannot (resources of the other services, conditions, KMS). The
harness itself (provisioning, reading queues and tables to drive the flows) is an IAM user allowed
everything, never one of the roles under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.core import enable_iam_authentication

from batchplane.adapters import clients as handler_clients
from batchplane_tools.iam.encryption import EncryptionAtRest
from batchplane_tools.iam.recorder import Recorder
from batchplane_tools.iam.requests import RequestMapper
from batchplane_tools.iam.roles import Role, create_on_moto, name_roles, roles, runs_as
from batchplane_tools.local.template import ACCOUNT, REGION, Stack, provision
from tests.conftest import _speed_moto_up_as_the_local_stack_does
from tests.support import POLICY_PATH, TEMPLATE, clear_caches

STACK_NAME = "batchplane-iam"
# A deploy passes the workers' image from this account's ECR (README, Deploy): the execution role pulls it.
WORKER_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/batchplane-workers:1"
_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "batchplane",
    "POWERTOOLS_SERVICE_NAME": "batchplane",
}


class _ActingSession:
    """Stands in for the handlers' boto3 session (adapters/clients.py): the session of the role whose
    function is running. A handler client used outside an invocation is an error in the harness."""

    def __init__(self) -> None:
        self.session: Any = None

    def __call__(self) -> Any:
        if self.session is None:
            raise RuntimeError("a handler's AWS client was used outside an invocation")
        return self.session

    def cache_clear(self) -> None:
        """reset_clients() clears the session cache; the role sessions are the harness's to keep."""


@dataclass
class IamStack:
    stack: Stack
    admin: Any  # the harness's boto3 session
    roles: dict[str, Role]
    runs_as: dict[str, str]  # function or job definition -> role
    recorder: Recorder
    encryption: EncryptionAtRest
    monkeypatch: pytest.MonkeyPatch
    _credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    _sessions: dict[tuple[str, str], Any] = field(default_factory=dict)
    _acting: _ActingSession = field(default_factory=_ActingSession)
    _handler_clients: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return self.stack.function_environment()

    def client(self, service: str) -> Any:
        """A client of the harness (allowed everything), never a role's."""
        return self.admin.client(service)

    def session_for(self, role: str, origin: str) -> Any:
        """A boto3 session with `role`'s credentials whose every call is recorded as made via `origin`."""
        key = (role, origin)
        if key not in self._sessions:
            credentials = self._credentials[role]
            session = boto3.session.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name=REGION,
            )
            self.recorder.attach(session, role, origin)
            self._sessions[key] = session
        return self._sessions[key]

    def role_client(self, role: str, origin: str, service: str) -> Any:
        config = Config(account_id_endpoint_mode="disabled") if service == "dynamodbstreams" else None
        return self.session_for(role, origin).client(service, config=config)

    def credentials(self, role: str) -> dict[str, str]:
        return self._credentials[role]

    @contextmanager
    def acting(self, function: str) -> Iterator[None]:
        """The handlers' clients are `function`'s role's while inside."""
        previous = self._acting.session, handler_clients._clients
        self._acting.session = self.session_for(self.runs_as[function], "handler")
        handler_clients._clients = self._handler_clients.setdefault(function, {})
        try:
            yield
        finally:
            self._acting.session, handler_clients._clients = previous

    def function_property(self, function: str, name: str, default: Any = None) -> Any:
        """A function's property, or its Globals default."""
        own = self.stack.template["Resources"][function]["Properties"]
        shared = self.stack.template.get("Globals", {}).get("Function", {})
        return own.get(name, shared.get(name, default))


def _name_what_roles_name(stack: Stack, kms: Any) -> None:
    """What the roles' policies refer to that the data-plane provisioning leaves out: the functions'
    names and log groups, the KMS keys and aliases, and the roles themselves."""
    for logical, props in stack.resources("AWS::Serverless::Function"):
        stack.refs[logical] = f"{stack.name}-{logical}"
        for event, spec in props.get("Events", {}).items():  # the rules SAM makes of them
            if spec["Type"] in ("EventBridgeRule", "Schedule"):
                rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{stack.name}-{logical}{event}"
                stack.attributes[(f"{logical}{event}", "Arn")] = rule
    for logical, props in stack.resources("AWS::Logs::LogGroup"):
        name = stack.resolve(props["LogGroupName"])
        stack.refs[logical] = name
        stack.attributes[(logical, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    for logical, props in stack.resources("AWS::KMS::Key"):
        key = kms.create_key(Policy=json.dumps(stack.resolve(props["KeyPolicy"])))["KeyMetadata"]
        stack.refs[logical], stack.attributes[(logical, "Arn")] = key["KeyId"], key["Arn"]
    for logical, props in stack.resources("AWS::KMS::Alias"):
        stack.refs[logical] = stack.resolve(props["AliasName"])
    name_roles(stack)


def _harness_session(session: Any) -> tuple[Any, dict[str, str]]:
    """An IAM user allowed everything: the harness keeps working once moto enforces IAM."""
    iam = session.client("iam")
    iam.create_user(UserName="harness")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="harness", PolicyName="everything", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="harness")["AccessKey"]
    keys = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    admin = boto3.session.Session(
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    return admin, keys


def _job_definition_arn(batch: Any) -> Any:
    """Batch authorizes SubmitJob on the revision it runs: a name alone means the latest ACTIVE one."""

    def arn(given: str) -> str:
        if given.startswith("arn:"):
            return given
        name, _, revision = given.partition(":")
        if not revision:
            found = batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
            if not found:  # Batch refuses the call; what it was asked for is the name
                return f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}"
            revision = str(max(d["revision"] for d in found))
        return f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{name}:{revision}"

    return arn


@contextmanager
def iam_stack() -> Iterator[IamStack]:
    """The stack with IAM enforced from the first call a role makes; the roles assumed beforehand."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws(config={"batch": {"use_docker": False}}):
        for name, value in {
            **_ENVIRONMENT,
            "AWS_ACCESS_KEY_ID": "setup",
            "AWS_SECRET_ACCESS_KEY": "setup",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        _speed_moto_up_as_the_local_stack_does(monkeypatch)
        session = boto3.session.Session()
        stack = provision(TEMPLATE, session, stack_name=STACK_NAME)
        stack.refs["WorkerImage"] = WORKER_IMAGE
        _name_what_roles_name(stack, session.client("kms"))
        admin, keys = _harness_session(session)
        for name, value in {**stack.function_environment(), **keys}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("POLICY_PATH", str(POLICY_PATH))
        monkeypatch.setenv("SUBMIT_RATE_PER_SECOND", "1000")
        found = roles(stack)
        sts = session.client("sts")
        credentials = {}
        for logical, role in found.items():
            create_on_moto(role, session.client("iam"))
            assumed = sts.assume_role(RoleArn=role.arn, RoleSessionName=f"iam-{logical}"[:64])
            credentials[logical] = assumed["Credentials"]
        iam = IamStack(
            stack=stack,
            admin=admin,
            roles=found,
            runs_as=runs_as(stack),
            recorder=Recorder(RequestMapper(_job_definition_arn(admin.client("batch")))),
            encryption=EncryptionAtRest.of(stack),
            monkeypatch=monkeypatch,
            _credentials=credentials,
        )
        monkeypatch.setattr(handler_clients, "_session", iam._acting)
        monkeypatch.setattr(handler_clients, "_clients", {})
        clear_caches()
        try:
            with enable_iam_authentication():
                yield iam
        finally:
            clear_caches()
