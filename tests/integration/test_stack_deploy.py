"""template.yaml deployed as a stack on moto's CloudFormation, and jobs run against what it created.

The other integration tests provision the template's data-plane resources one by one
(batchplane_tools.local.template.provision). This one deploys the template the way production does: the
SAM transform (samtranslator, offline), then CloudFormation's create_stack. It reads the stack's
Outputs and each function's environment as CloudFormation resolved it, and runs the handlers
in-process against the stack's resources, so template and code must agree on every name, key and
index.

What moto's CloudFormation cannot do is handled in the open, never silently:

- UNSUPPORTED_BY_MOTO: resource types taken out of the translated template before create_stack,
  along with what only exists for them (the dashboard of the alarms, the API's invoke permissions)
  and the Outputs that name them (EXPECTED_DROPPED_OUTPUTS). A type that moto would skip with a
  warning fails the deployment here instead.
- adapt_for_moto: the one property moto insists on that AWS does not (a compute environment's
  ServiceRole), given the value AWS uses when it is left out.
- create_with_api: moto's CloudFormation has no model of a Secrets Manager secret; each is created
  with CreateSecret (a value as its GenerateSecretString makes one), and every Ref to it, as
  CloudFormation resolves it, becomes its ARN. Batch scheduling policies alike (CreateSchedulingPolicy);
  the queues' SchedulingPolicyArn, which moto's CloudFormation ignores, is applied with UpdateJobQueue.
- MOTO_REF_FIXES: resources whose Ref moto's CloudFormation resolves to its internal object
  instead of the documented value (an event bus's name, a layer version's ARN).
- apply_what_moto_drops: properties moto accepts and then ignores (the table's TTL, the buckets'
  versioning and notifications) and the queue policies it cannot create, applied through the
  service APIs from the template's own values, as CloudFormation would.
- The stack's SQS and DynamoDB-stream event source mappings are created and checked, then disabled:
  moto would invoke the functions in Docker on every message or table write (a stream's mapping it
  runs even disabled, so it is also taken off moto's table). The tests deliver the messages and the
  stream's records themselves, as Lambda does.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import subprocess
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.awslambda.models import LayerVersion
from moto.dynamodb.models import dynamodb_backends
from moto.events.models import EventBus

from batchplane.policy.document import load_policy
from batchplane.settings import load_settings
from batchplane_tools.local.streams import StreamMapping
from batchplane_tools.local.template import (
    Stack,
    bucket_notifications,
    fairshare_policy,
    generated_secret,
    load_template,
)
from tests.support import (
    POLICY_PATH,
    ROOT,
    TEMPLATE,
    LambdaContext,
    api_event,
    batch_event,
    clear_caches,
    load_function,
    sqs_event,
    watch_queues,
)

STACK_NAME = "batchplane-prod"
CODE_BUCKET = "batchplane-deploy-artifacts"  # where `sam deploy` would upload the packaged code

# Resource types removed from the translated template before create_stack, and why.
UNSUPPORTED_BY_MOTO: dict[str, str] = {
    "AWS::ApiGateway::RestApi": (
        "moto's model requires a Name and ignores Body, the OpenAPI document SAM writes the routes "
        "into; the routes are checked against the API function's own document instead"
    ),
    "AWS::ApiGateway::Deployment": "deploys the RestApi above",
    "AWS::ApiGateway::Stage": "no CloudFormation model in moto (the v1 stage, its access log, tracing)",
    "AWS::CloudWatch::Alarm": "no CloudFormation model in moto; alarms watch metrics, no code reads them",
    "AWS::Lambda::EventInvokeConfig": "no CloudFormation model in moto; Lambda's async retries, not code's",
    "AWS::SQS::QueuePolicy": "no CloudFormation model in moto; applied with SetQueueAttributes below",
    "AWS::S3::BucketPolicy": (
        "no CloudFormation model in moto, and not applied either: moto enforces a bucket policy's Deny "
        "on object requests without evaluating its Condition, so the TLS-only statements would refuse "
        "every request"
    ),
    "AWS::SNS::Subscription": (
        "no CloudFormation model in moto; the alert e-mail subscription, off anyway (HasAlertEmail) "
        "with the default AlertEmail"
    ),
}
# What goes with them because it names one of them: only these types may go that way, so a
# data-plane resource can never drop out of the deployment unnoticed.
DEPENDENT_TYPES_REMOVED = {
    "AWS::CloudWatch::Dashboard",  # its widgets name the alarms' ARNs
    "AWS::Lambda::Permission",  # API Gateway's permission to invoke ApiFunction names the RestApi
}
EXPECTED_DROPPED_OUTPUTS = {"ApiUrl", "DashboardName"}
# What the code reads, writes, calls or is triggered by: every such resource must come from the stack.
DATA_PLANE_TYPES = {
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::KMS::Key",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::Batch::ComputeEnvironment",
    "AWS::Batch::JobQueue",
    "AWS::Batch::JobDefinition",
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::EventSourceMapping",
    "AWS::IAM::Role",
}

# What store.py reads and writes: the table's keys, its indexes and the TTL attribute.
TABLE_KEYS = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TABLE_INDEXES = {
    "by_tenant_status": ("gsi2pk", "gsi2sk"),
    "by_activity": ("gsi3pk", "gsi3sk"),
}
TTL_ATTRIBUTE = "expires_at"


# Ref of these resources is documented as a name or an ARN; moto's CloudFormation hands out its model
# object instead (they lack physical_resource_id), which would end up in the functions' environment.
MOTO_REF_FIXES = {
    EventBus: lambda bus: bus.name,  # Ref of AWS::Events::EventBus is its name
    LayerVersion: lambda layer: layer.arn,  # Ref of AWS::Lambda::LayerVersion is its ARN
}


# ---------------------------------------------------------------------------------------------------
# Deploying
# ---------------------------------------------------------------------------------------------------


@dataclass
class DeployedStack:
    """A stack created by moto's CloudFormation from the translated template."""

    session: Any
    monkeypatch: pytest.MonkeyPatch
    translated: dict[str, Any]  # the SAM transform's output: everything production would get
    removed: dict[str, str]  # logical id -> type of what moto did not deploy
    dropped_outputs: set[str]
    functions: dict[str, str]  # functions/<folder> -> the function's logical id
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    outputs: dict[str, str] = field(default_factory=dict)
    event_sources: dict[str, str] = field(default_factory=dict)  # function logical id -> queue ARN

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def function_configuration(self, folder: str) -> dict[str, Any]:
        name = self.resources[self.functions[folder]]
        return self.client("lambda").get_function_configuration(FunctionName=name)

    def environment(self, folder: str) -> dict[str, str]:
        """The function's environment as CloudFormation resolved it, made runnable in this process."""
        variables = self.function_configuration(folder)["Environment"]["Variables"]
        env = {name: str(value) for name, value in variables.items()}
        # The layer is mounted at /opt, and SAM's python build puts the layer's files under python/.
        env["POLICY_PATH"] = str(POLICY_PATH.parent / Path(env["POLICY_PATH"]).relative_to("/opt/python"))
        # No X-Ray daemon in-process: tracing stays off, as in every other test (tests/conftest.py).
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
        return env

    def invoke(self, folder: str, event: dict[str, Any]) -> Any:
        """Call functions/<folder>/app.py's handler in the environment the stack gave that function."""
        for name, value in self.environment(folder).items():
            self.monkeypatch.setenv(name, value)
        clear_caches()
        configuration = self.function_configuration(folder)
        context = LambdaContext(
            function_name=configuration["FunctionName"], invoked_function_arn=configuration["FunctionArn"]
        )
        return load_function(folder).handler(event, context)


def _network(ec2: Any) -> tuple[str, str]:
    """The VPC, subnet and security group that the SubnetIds / SecurityGroupIds parameters name."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="batch", Description="Batch instances", VpcId=vpc)["GroupId"]
    return subnet, group


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def package(sam: dict[str, Any], s3: Any) -> dict[str, str]:
    """What `sam package` does: upload each function's and layer's folder, point CodeUri/ContentUri
    at the upload. Returns functions/<folder> -> logical id."""
    s3.create_bucket(Bucket=CODE_BUCKET)
    functions: dict[str, str] = {}
    for logical, resource in sam["Resources"].items():
        properties = resource.get("Properties", {})
        for uri in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(uri), str):
                folder = ROOT / properties[uri]
                key = f"{properties[uri]}.zip"
                s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=_zip(folder))
                properties[uri] = {"Bucket": CODE_BUCKET, "Key": key}
                if resource["Type"] == "AWS::Serverless::Function":
                    functions[folder.name] = logical
    return functions


def _names(value: Any) -> set[str]:
    """The logical ids a piece of template refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value))
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, arg in value.items():
        if key == "Ref":
            found.add(arg)
        elif key == "Fn::GetAtt":
            found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
        elif key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _names(variables)
        else:
            found |= _names(arg)
    return found


def remove_unsupported(template: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """Take out UNSUPPORTED_BY_MOTO, what names it, and the Outputs that name any of it.

    DependsOn on a removed resource is dropped (IngestBucket waits for IngestQueuePolicy, which is
    applied after the stack instead). Returns (logical id -> type removed, outputs dropped).
    """
    resources = template["Resources"]
    removed = {logical: r["Type"] for logical, r in resources.items() if r["Type"] in UNSUPPORTED_BY_MOTO}
    while True:
        dependents = {
            logical: r["Type"]
            for logical, r in resources.items()
            if logical not in removed and _names(r.get("Properties", {})) & removed.keys()
        }
        if not dependents:
            break
        assert set(dependents.values()) <= DEPENDENT_TYPES_REMOVED, f"would also remove {dependents}"
        removed |= dependents
    for logical in removed:
        del resources[logical]
    for resource in resources.values():
        if "DependsOn" in resource:
            depends = resource["DependsOn"]
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in removed]
            resource.pop("DependsOn")
            if kept:
                resource["DependsOn"] = kept
    dropped = {name for name, output in template["Outputs"].items() if _names(output) & removed.keys()}
    for name in dropped:
        del template["Outputs"][name]
    return removed, dropped


def adapt_for_moto(template: dict[str, Any], iam: Any) -> None:
    """moto's Batch requires a compute environment's ServiceRole; AWS uses the service-linked role
    AWSServiceRoleForBatch when it is left out, as the template does. Give moto that role."""
    role = iam.create_role(
        RoleName="AWSServiceRoleForBatch",
        Path="/aws-service-role/batch.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "batch.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Batch::ComputeEnvironment":
            resource["Properties"].setdefault("ServiceRole", role)


def _replace_refs(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, list):
        return [_replace_refs(v, refs) for v in value]
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in refs:
            return refs[value["Ref"]]
        return {k: _replace_refs(v, refs) for k, v in value.items()}
    return value


def create_with_api(
    template: dict[str, Any], kind: str, create: Callable[[str, dict[str, Any]], str]
) -> dict[str, str]:
    """Create the template's resources of a type moto's CloudFormation has no model of with the
    service API (`create(logical id, properties)` returns what CloudFormation's Ref of it is: an
    ARN), and put that where they are Ref'd. Returns logical id -> ARN."""
    made = {
        logical: create(logical, resource["Properties"])
        for logical, resource in template["Resources"].items()
        if resource["Type"] == kind
    }
    for logical in made:
        del template["Resources"][logical]
    template["Resources"] = _replace_refs(template["Resources"], made)
    return made


def _resolver(template: dict[str, Any], stack: DeployedStack) -> Stack:
    """Resolves Ref / Fn::GetAtt / Fn::Sub against what the stack created (physical ids, ARNs)."""
    resolver = Stack(name=STACK_NAME, template=template, refs=dict(stack.resources))
    sqs, events = stack.client("sqs"), stack.client("events")
    for logical, resource in template["Resources"].items():
        physical = stack.resources.get(logical)
        if physical is None:
            continue
        if resource["Type"] == "AWS::SQS::Queue":
            attributes = sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
            resolver.attributes[(logical, "Arn")] = attributes["Attributes"]["QueueArn"]
        elif resource["Type"] == "AWS::S3::Bucket":
            resolver.attributes[(logical, "Arn")] = f"arn:aws:s3:::{physical}"
        elif resource["Type"] == "AWS::Events::Rule":
            resolver.attributes[(logical, "Arn")] = events.describe_rule(Name=physical)["Arn"]
    return resolver


def apply_what_moto_drops(stack: DeployedStack) -> None:
    """Apply, from the translated template, what moto's CloudFormation accepts and then ignores."""
    template = stack.translated
    resolver = _resolver(template, stack)
    resolve = resolver.resolve
    dynamodb, s3, sqs = stack.client("dynamodb"), stack.client("s3"), stack.client("sqs")
    for logical, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in properties:
            dynamodb.update_time_to_live(
                TableName=stack.resources[logical],
                TimeToLiveSpecification=properties["TimeToLiveSpecification"],
            )
        elif kind == "AWS::S3::Bucket":
            bucket = stack.resources[logical]
            if "VersioningConfiguration" in properties:
                s3.put_bucket_versioning(
                    Bucket=bucket,
                    VersioningConfiguration={"Status": properties["VersioningConfiguration"]["Status"]},
                )
            notifications = bucket_notifications(resolver, properties)
            if notifications is not None:
                assert set(properties["NotificationConfiguration"]) <= {
                    "QueueConfigurations",
                    "EventBridgeConfiguration",
                }, "only queue and EventBridge notifications are applied"
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration=notifications
                )
        elif kind == "AWS::Batch::JobQueue" and "SchedulingPolicyArn" in properties:
            # moto's CloudFormation creates the queue without it
            stack.client("batch").update_job_queue(
                jobQueue=stack.resources[logical],
                schedulingPolicyArn=resolve(properties["SchedulingPolicyArn"]),
            )
        elif kind == "AWS::SQS::QueuePolicy":
            for url in resolve(properties["Queues"]):
                sqs.set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": json.dumps(resolve(properties["PolicyDocument"]))}
                )


def pause_event_sources(stack: DeployedStack) -> None:
    """Record each event source mapping the stack created (function -> queue or stream), then disable
    it: moto would run the function in Docker for every message or table write. A DynamoDB stream's
    mapping moto runs even disabled: it is taken off moto's table too. The tests deliver themselves."""
    lambda_ = stack.client("lambda")
    function_by_name = {stack.resources[logical]: logical for logical in stack.functions.values()}
    for logical, resource in stack.translated["Resources"].items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping" and logical in stack.resources:
            mapping = lambda_.get_event_source_mapping(UUID=stack.resources[logical])
            function = function_by_name[mapping["FunctionArn"].split(":")[-1]]
            stack.event_sources[function] = mapping["EventSourceArn"]
            lambda_.update_event_source_mapping(UUID=stack.resources[logical], Enabled=False)
            if mapping["EventSourceArn"].startswith("arn:aws:dynamodb:"):
                table = mapping["EventSourceArn"].split(":table/")[1].split("/stream/")[0]
                backend = dynamodb_backends["123456789012"]["us-east-1"]
                backend.get_table(table).lambda_event_source_mappings.pop(mapping["FunctionArn"], None)


def sam_transform(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The SAM transform, offline, in the SAM CLI's environment (tests/sam_transform.py says why)."""
    python = os.environ.get("BATCHPLANE_SAM_PYTHON", str(ROOT / ".venv-sam" / "bin" / "python"))
    if not Path(python).exists():
        pytest.fail(f"no SAM environment at {python}: run `make sam-env` (make test does)")
    done = subprocess.run(
        [python, str(ROOT / "tests" / "sam_transform.py"), json.dumps(parameters)],
        input=json.dumps(template),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode:
        pytest.fail(f"the SAM transform failed:\n{done.stderr}")
    translated: dict[str, Any] = json.loads(done.stdout)
    return translated


def deploy(session: Any, monkeypatch: pytest.MonkeyPatch) -> DeployedStack:
    subnet, group = _network(session.client("ec2"))
    sam = load_template(TEMPLATE)
    functions = package(sam, session.client("s3"))
    translated = sam_transform(sam, {"SubnetIds": [subnet], "SecurityGroupIds": [group]})
    template = copy.deepcopy(translated)
    removed, dropped_outputs = remove_unsupported(template)
    adapt_for_moto(template, session.client("iam"))
    secretsmanager, batch = session.client("secretsmanager"), session.client("batch")
    made = {
        "AWS::SecretsManager::Secret": lambda logical, properties: secretsmanager.create_secret(
            Name=f"{STACK_NAME}-{logical}", SecretString=generated_secret(properties)
        )["ARN"],
        "AWS::Batch::SchedulingPolicy": lambda logical, properties: batch.create_scheduling_policy(
            name=f"{STACK_NAME}-{logical}", fairsharePolicy=fairshare_policy(properties)
        )["arn"],
    }
    secrets = {
        logical: arn
        for kind, create in made.items()
        for logical, arn in create_with_api(template, kind, create).items()
    }

    cloudformation = session.client("cloudformation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName=STACK_NAME,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "SubnetIds", "ParameterValue": subnet},
                {"ParameterKey": "SecurityGroupIds", "ParameterValue": group},
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        [described] = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"]
    skipped = [str(w.message) for w in caught if "not supported by moto" in str(w.message)]
    assert not skipped, f"moto skipped resources; list their types in UNSUPPORTED_BY_MOTO: {skipped}"
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")

    stack = DeployedStack(
        session=session,
        monkeypatch=monkeypatch,
        translated=translated,
        removed=removed,
        dropped_outputs=dropped_outputs,
        functions=functions,
    )
    stack.resources = {  # (moto gives the Lambda permissions no physical id)
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
    } | secrets
    stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    pause_event_sources(stack)  # first: configuring a bucket notification sends S3's test event
    apply_what_moto_drops(stack)
    return stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeployedStack]:
    """template.yaml, translated by SAM and created by moto's CloudFormation, in-process."""
    for model, ref in MOTO_REF_FIXES.items():
        monkeypatch.setattr(model, "physical_resource_id", property(ref), raising=False)
    with mock_aws(config={"batch": {"use_docker": False}}):
        clear_caches()
        yield deploy(boto3.session.Session(), monkeypatch)
        clear_caches()


# ---------------------------------------------------------------------------------------------------
# Running the functions as their triggers would
# ---------------------------------------------------------------------------------------------------


def call_api(stack: DeployedStack, event: dict[str, Any]) -> tuple[int, Any]:
    response = stack.invoke("api", event)
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def receive(stack: DeployedStack, queue_url: str) -> list[dict[str, Any]]:
    return (
        stack.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        .get("Messages", [])
    )


def deliver(stack: DeployedStack, folder: str, queue_url: str, messages: list[dict[str, Any]]) -> Any:
    """Hand messages to a function as its SQS event source mapping would, and delete the ones it
    processed (all but the batch item failures)."""
    event = sqs_event(
        [(m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"])) for m in messages]
    )
    for record in event["Records"]:
        record["eventSourceARN"] = stack.event_sources[stack.functions[folder]]
    result = stack.invoke(folder, event)
    failed = {failure["itemIdentifier"] for failure in result["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            stack.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return result


def outbox_mapping(stack: DeployedStack) -> dict[str, Any]:
    """The outbox function's event source mapping, as the stack created it."""
    [logical] = [
        logical
        for logical, resource in stack.translated["Resources"].items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    ]
    return stack.client("lambda").get_event_source_mapping(UUID=stack.resources[logical])  # type: ignore[no-any-return]


def deliver_stream(stack: DeployedStack) -> list[Any]:
    """Hand the jobs table's stream to the outbox function as its event source mapping would."""
    mapping = outbox_mapping(stack)
    streams = stack.session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    return StreamMapping.of_event(
        mapping,
        streams=streams,
        stream_arn=mapping["EventSourceArn"],
        invoke=lambda event: stack.invoke("outbox", event),
    ).drain()


def batch_jobs_named(stack: DeployedStack, queue: str, name: str) -> list[dict[str, Any]]:
    found = stack.client("batch").list_jobs(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
    return [job for job in found["jobSummaryList"] if job["jobName"] == name]


# ---------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------


def test_the_stack_deploys_with_every_output_and_what_moto_cannot_create_set_aside(stack) -> None:
    # Given the deployed stack
    # Then every data-plane resource of the template was created by it
    data_plane = {
        logical
        for logical, resource in stack.translated["Resources"].items()
        if resource["Type"] in DATA_PLANE_TYPES
    }
    assert data_plane - {logical for logical, physical in stack.resources.items() if physical} == set()
    # and only the Outputs of what moto cannot create are missing
    assert stack.dropped_outputs == EXPECTED_DROPPED_OUTPUTS
    # and the stack has every other Output the template declares, each with a value
    declared = set(load_template(TEMPLATE)["Outputs"])
    assert set(stack.outputs) == declared - EXPECTED_DROPPED_OUTPUTS
    assert all(stack.outputs.values()), stack.outputs
    # and every function's environment names the stack's resources as its Outputs do
    for folder in stack.functions:
        env = stack.environment(folder)
        load_settings(env)  # the environment contract of batchplane/settings.py holds
        assert env["JOBS_TABLE_NAME"] == stack.outputs["JobsTableName"]
        assert env["DISPATCH_QUEUE_URL"] == stack.outputs["DispatchQueueUrl"]
        assert env["SPOT_JOB_QUEUE"] == stack.outputs["SpotJobQueueArn"]
        assert env["ON_DEMAND_JOB_QUEUE"] == stack.outputs["OnDemandJobQueueArn"]
        assert env["JOB_DEFINITION_PREFIX"] == stack.outputs["JobDefinitionPrefix"]
        assert env["ARTIFACT_BUCKET"] == stack.outputs["ArtifactBucketName"]
        assert env["INGEST_BUCKET"] == stack.outputs["IngestBucketName"]  # fixed name == Ref
        assert env["ALERT_TOPIC_ARN"] == stack.outputs["AlertTopicArn"]
        assert env["EVENT_BUS_NAME"] == stack.outputs["JobEventBusName"]
        assert env["PAGE_TOKEN_SECRET_ARN"] == stack.resources["PageTokenSecret"]


def test_the_stacks_table_has_the_keys_indexes_and_ttl_the_store_uses(stack) -> None:
    # Given the stack's job table
    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.outputs["JobsTableName"])["Table"]

    # Then its keys, indexes and TTL attribute are the ones batchplane/adapters/store.py uses
    assert table["KeySchema"] == TABLE_KEYS
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == TABLE_INDEXES
    ttl = dynamodb.describe_time_to_live(TableName=stack.outputs["JobsTableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    # and its stream carries both images of every write, which the outbox compares
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == stack.outputs["JobsTableStreamArn"]


def test_the_stacks_batch_queues_definitions_and_triggers_are_the_ones_the_code_uses(stack) -> None:
    # Given the stack's Batch resources, rule and event sources
    batch = stack.client("batch")
    prefix = stack.outputs["JobDefinitionPrefix"]

    # Then every job type of the policy has its job definition under the stack's prefix
    policy = load_policy(POLICY_PATH)
    active = batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    definitions = {definition["jobDefinitionName"] for definition in active}
    assert {prefix + job_type.job_definition for job_type in policy.job_types.values()} <= definitions
    # and both job queues are enabled on their own compute environment
    queues = batch.describe_job_queues(
        jobQueues=[stack.outputs["SpotJobQueueArn"], stack.outputs["OnDemandJobQueueArn"]]
    )["jobQueues"]
    assert [q["state"] for q in queues] == ["ENABLED", "ENABLED"]
    assert {q["computeEnvironmentOrder"][0]["computeEnvironment"] for q in queues} == {
        stack.resources["SpotComputeEnvironment"],
        stack.resources["OnDemandComputeEnvironment"],
    }
    # and both are fair share, under one scheduling policy weighing the policy document's shares
    [arn] = {q["schedulingPolicyArn"] for q in queues}
    [scheduling] = batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
    fairshare = scheduling["fairsharePolicy"]
    assert fairshare["shareDecaySeconds"] == policy.scheduling.share_decay_seconds
    assert [(s["shareIdentifier"], s["weightFactor"]) for s in fairshare["shareDistribution"]] == (
        policy.scheduling.share_distribution()
    )
    sqs, events = stack.client("sqs"), stack.client("events")

    def queue(url: str, attribute: str) -> str:
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[attribute])["Attributes"][attribute]

    # and the state-change rule follows exactly those two queues, with its dead letters kept
    rule = events.describe_rule(Name=stack.resources["StateChangeFunctionBatchStateChange"])
    pattern = json.loads(rule["EventPattern"])
    assert sorted(pattern["detail"]["jobQueue"]) == sorted(
        [stack.outputs["SpotJobQueueArn"], stack.outputs["OnDemandJobQueueArn"]]
    )
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == stack.function_configuration("state_change")["FunctionArn"]
    assert target["DeadLetterConfig"]["Arn"] == queue(stack.outputs["StateChangeDLQUrl"], "QueueArn")
    # and the dispatcher reads the dispatch queue, the coalescer the array queue, the file-drop
    # function the ingest queue, the outbox function the jobs table's stream
    assert stack.event_sources == {
        "DispatcherFunction": queue(stack.outputs["DispatchQueueUrl"], "QueueArn"),
        "CoalescerFunction": queue(stack.outputs["ArrayQueueUrl"], "QueueArn"),
        "FileDropFunction": queue(stack.outputs["IngestQueueUrl"], "QueueArn"),
        "OutboxFunction": stack.outputs["JobsTableStreamArn"],
    }
    # which it reads from the start, reporting failed records one by one, and describes what fails
    # every retry in the outbox's DLQ
    outbox = outbox_mapping(stack)
    assert (outbox["StartingPosition"], outbox["FunctionResponseTypes"]) == (
        "TRIM_HORIZON",
        ["ReportBatchItemFailures"],
    )
    assert outbox["DestinationConfig"]["OnFailure"]["Destination"] == queue(
        stack.outputs["OutboxDLQUrl"], "QueueArn"
    )
    [pattern] = [json.loads(f["Pattern"]) for f in outbox["FilterCriteria"]["Filters"]]
    assert pattern["dynamodb"]["Keys"] == {"sk": {"S": ["JOB"]}}
    # and the queue policies admit the stack's ingest bucket and state-change rule, by the names
    # the bucket and rule really have
    [ingest] = json.loads(queue(stack.outputs["IngestQueueUrl"], "Policy"))["Statement"]
    bucket_arn = f"arn:aws:s3:::{stack.outputs['IngestBucketName']}"
    assert ingest["Condition"]["ArnLike"]["aws:SourceArn"] == bucket_arn
    [dead_letters] = json.loads(queue(stack.outputs["StateChangeDLQUrl"], "Policy"))["Statement"]
    assert dead_letters["Condition"]["ArnEquals"]["aws:SourceArn"] == rule["Arn"]


def test_the_api_routes_in_the_template_are_the_routes_the_api_function_serves(stack) -> None:
    # Given the routes SAM wrote into the REST API's OpenAPI body (moto cannot deploy it)
    body = stack.translated["Resources"]["BatchplaneApi"]["Properties"]["Body"]
    declared = {(path, method.upper()) for path, methods in body["paths"].items() for method in methods}

    # When the API function is asked for its own OpenAPI document
    status, document = call_api(stack, api_event("GET", "/openapi.json"))

    # Then it serves exactly those routes (the document leaves out /openapi.json itself)
    assert status == 200
    served = {(path, method.upper()) for path, methods in document["paths"].items() for method in methods}
    assert declared == served | {("/openapi.json", "GET")}


def test_a_posted_job_is_submitted_to_the_stacks_on_demand_queue(stack) -> None:
    # Given a word-count job whose input is under the tenant's prefix of the stack's ingest bucket
    source = f"s3://{stack.outputs['IngestBucketName']}/incoming/analytics/notes.txt"
    body = {"job_type": "word-count", "parameters": {"input": source}}
    headers = {"Content-Type": "application/json"}

    # When it is POSTed to the API function
    status, job = call_api(stack, api_event("POST", "/jobs", body=body, headers=headers))

    # Then it is accepted, and its first attempt waits on the stack's dispatch queue
    assert status == 202, job
    assert job["status"] == "QUEUED"
    messages = receive(stack, stack.outputs["DispatchQueueUrl"])
    assert [(json.loads(m["Body"])["job_id"], json.loads(m["Body"])["attempt"]) for m in messages] == [
        (job["job_id"], 1)
    ]

    # When the dispatcher gets the message, as the stack's event source mapping would deliver it
    result = deliver(stack, "dispatcher", stack.outputs["DispatchQueueUrl"], messages)

    # Then Batch has the attempt under its deterministic name on the stack's on-demand queue
    assert result == {"batchItemFailures": []}
    [summary] = batch_jobs_named(stack, stack.outputs["OnDemandJobQueueArn"], f"bp-{job['job_id']}-1")
    [described] = stack.client("batch").describe_jobs(jobs=[summary["jobId"]])["jobs"]
    assert described["jobQueue"] == stack.outputs["OnDemandJobQueueArn"]
    definition = described["jobDefinition"].split("/")[-1]
    assert definition.startswith(f"{stack.outputs['JobDefinitionPrefix']}word-count:")
    # and the job says SUBMITTED, with that Batch job as its attempt
    status, stored = call_api(stack, api_event("GET", f"/jobs/{job['job_id']}", resource="/jobs/{job_id}"))
    assert status == 200
    assert stored["status"] == "SUBMITTED"
    [attempt] = stored["attempts"]
    assert attempt["batch_job_id"] == summary["jobId"]
    assert attempt["queue"] == stack.outputs["OnDemandJobQueueArn"]


def test_a_listing_pages_with_tokens_signed_under_the_stacks_secret(stack) -> None:
    # Given two jobs, and the first page of their listing
    source = f"s3://{stack.outputs['IngestBucketName']}/incoming/analytics/notes.txt"
    body = {"job_type": "word-count", "parameters": {"input": source}}
    for _ in range(2):
        call_api(stack, api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"}))
    status, first = call_api(stack, api_event("GET", "/jobs", query={"limit": "1"}))
    assert status == 200, first

    # When the next page is asked for with its token, in the environment the stack gave the API
    status, second = call_api(
        stack, api_event("GET", "/jobs", query={"limit": "1", "next_token": first["next_token"]})
    )

    # Then the token, signed with the stack's secret, opens it
    assert status == 200, second
    assert second["jobs"][0]["job_id"] != first["jobs"][0]["job_id"]


def test_a_file_dropped_into_the_stacks_ingest_bucket_becomes_a_job(stack) -> None:
    # Given the stack's ingest bucket, notifying its ingest queue as the template configures it
    bucket = stack.outputs["IngestBucketName"]
    key = "incoming/analytics/word-count/notes.txt"

    # When a text file is dropped under tenant analytics's incoming/analytics/word-count/
    stack.client("s3").put_object(Bucket=bucket, Key=key, Body=b"to be or not to be\n")

    # Then S3 told the stack's ingest queue about it (after the s3:TestEvent that S3 sends when a
    # bucket's notifications are configured)
    messages = receive(stack, stack.outputs["IngestQueueUrl"])
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["Event"] for b in bodies if "Records" not in b] == ["s3:TestEvent"]
    [record] = [r for b in bodies for r in b.get("Records", [])]
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == bucket
    assert unquote_plus(record["s3"]["object"]["key"]) == key  # keys are URL-encoded in notifications

    # When the file-drop function gets the messages
    result = deliver(stack, "file_drop", stack.outputs["IngestQueueUrl"], messages)

    # Then a job of tenant analytics exists for the file, and its first attempt waits on the stack's
    # dispatch queue
    assert result == {"batchItemFailures": []}
    [dispatch] = receive(stack, stack.outputs["DispatchQueueUrl"])
    job_id = json.loads(dispatch["Body"])["job_id"]
    status, job = call_api(
        stack, api_event("GET", f"/jobs/{job_id}", resource="/jobs/{job_id}", tenant="analytics")
    )
    assert status == 200, job
    assert (job["status"], job["job_type"]) == ("QUEUED", "word-count")
    assert job["parameters"]["input"] == f"s3://{bucket}/{key}"


def test_a_job_that_fails_for_good_is_alerted_from_the_stacks_stream(stack) -> None:
    # Given a queue subscribed to the stack's alert topic, and one to its job event bus
    alerts, job_events = watch_queues(
        stack, topic_arn=stack.outputs["AlertTopicArn"], bus=stack.outputs["JobEventBusName"], name="all"
    )
    # and a word-count job submitted to Batch
    source = f"s3://{stack.outputs['IngestBucketName']}/incoming/analytics/notes.txt"
    status, job = call_api(
        stack,
        api_event(
            "POST",
            "/jobs",
            body={"job_type": "word-count", "parameters": {"input": source}},
            headers={"Content-Type": "application/json"},
        ),
    )
    assert status == 202, job
    deliver(
        stack,
        "dispatcher",
        stack.outputs["DispatchQueueUrl"],
        receive(stack, stack.outputs["DispatchQueueUrl"]),
    )
    _, job = call_api(stack, api_event("GET", f"/jobs/{job['job_id']}", resource="/jobs/{job_id}"))

    # When its attempt exits 1 (word-count retries no exit code 1) and the stream is delivered
    outcome = stack.invoke("state_change", batch_event("application_error", job=job))
    deliveries = deliver_stream(stack)

    # Then the state-change function decided, and the outbox function published the alert and the
    # "Job Failed" event the decision owes, each under its event id
    assert outcome["outcome"] == "failed"
    assert [d.failed for d in deliveries if d.records] == [[]]
    [alert] = [json.loads(m["Body"]) for m in receive(stack, alerts)]
    event_id = alert["MessageAttributes"]["event_id"]["Value"]
    assert event_id.startswith(f"{job['job_id']}:") and event_id.endswith(":alert")
    assert alert["Subject"].startswith(f"[batchplane] job {job['job_id']} failed")
    [failed] = [json.loads(m["Body"]) for m in receive(stack, job_events)]
    assert failed["detail-type"] == "Job Failed"
    assert failed["detail"]["event_id"] == event_id.removesuffix(":alert") + ":job_event"
