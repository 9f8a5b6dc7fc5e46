"""What IAM authorizes for an AWS API call: the action(s), the resource ARN(s) and the condition keys
the request carries, from the call's parameters (and, where the resource is only known afterwards,
its response), as each service's authorization reference documents them.

An operation without a rule here raises `Unmapped`: a call nobody has described is never taken as
allowed. Only the operations batchplane's roles make (handlers, Lambda's pollers, workers, the ECS
agent) are described.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from batchplane_tools.iam.evaluator import Request


class Unmapped(KeyError):
    """An operation whose IAM authorization is not described here."""


@dataclass(frozen=True)
class Call:
    """One API call as the client made it."""

    service: str  # botocore's service name: dynamodb, dynamodbstreams, sqs, s3, ...
    operation: str
    params: Mapping[str, Any]
    response: Mapping[str, Any]
    region: str
    account: str
    secure: bool = True  # sent over TLS (aws:SecureTransport)

    def request(self, action: str, resource: str, **context: tuple[str, ...]) -> Request:
        keys = {
            "aws:SecureTransport": ("true" if self.secure else "false",),
            "aws:RequestedRegion": (self.region,),
        }
        return Request(action, resource, {**keys, **context})

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


Rule = Callable[["RequestMapper", Call], list[Request]]


@dataclass
class RequestMapper:
    """Turns calls into IAM requests. `job_definition_arn` names the revision a SubmitJob by name runs
    (Batch authorizes `job-definition/<name>:<revision>`). Stateful only for stream reads: GetRecords
    names its stream through the iterator GetShardIterator returned."""

    job_definition_arn: Callable[[str], str]
    _iterators: dict[str, str] = field(default_factory=dict)

    def requests(self, call: Call) -> list[Request]:
        rule = _RULES.get((call.service, call.operation))
        if rule is None:
            raise Unmapped(f"no IAM rule for {call.service}:{call.operation}; describe it in iam/requests.py")
        return rule(self, call)


# ---- DynamoDB ------------------------------------------------------------------------------------

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _table(call: Call, name: str) -> str:
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


def _item(_: RequestMapper, call: Call) -> list[Request]:
    table = _table(call, call.params["TableName"])
    if call.params.get("IndexName"):
        table += f"/index/{call.params['IndexName']}"
    return [call.request(f"dynamodb:{call.operation}", table)]


def _batch_items(_: RequestMapper, call: Call) -> list[Request]:
    return [call.request(f"dynamodb:{call.operation}", _table(call, t)) for t in call.params["RequestItems"]]


def _transaction(_: RequestMapper, call: Call) -> list[Request]:
    # Each item is authorized as its own action (ConditionCheck as dynamodb:ConditionCheckItem), with
    # dynamodb:EnclosingOperation naming the transaction.
    requests = []
    for item in call.params["TransactItems"]:
        ((kind, body),) = item.items()
        action = f"dynamodb:{_TRANSACT_ACTIONS[kind]}"
        enclosing = {"dynamodb:EnclosingOperation": (call.operation,)}
        requests.append(call.request(action, _table(call, body["TableName"]), **enclosing))
    return requests


def _stream(mapper: RequestMapper, call: Call) -> list[Request]:
    if call.operation == "ListStreams":
        table = call.params.get("TableName")
        return [call.request("dynamodb:ListStreams", f"{_table(call, table)}/stream/*" if table else "*")]
    if call.operation == "GetRecords":
        stream = mapper._iterators.get(call.params["ShardIterator"], "unknown-stream")
        if call.response.get("NextShardIterator"):
            mapper._iterators[call.response["NextShardIterator"]] = stream
    else:
        stream = call.params["StreamArn"]
        if call.response.get("ShardIterator"):
            mapper._iterators[call.response["ShardIterator"]] = stream
    return [call.request(f"dynamodb:{call.operation}", stream)]


# ---- SQS, SNS, EventBridge -----------------------------------------------------------------------

_SQS_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}


def _queue(_: RequestMapper, call: Call) -> list[Request]:
    if call.operation == "GetQueueUrl":
        owner = call.params.get("QueueOwnerAWSAccountId", call.account)
        arn = f"arn:aws:sqs:{call.region}:{owner}:{call.params['QueueName']}"
    else:
        account, name = urlparse(call.params["QueueUrl"]).path.strip("/").split("/")[-2:]
        arn = f"arn:aws:sqs:{call.region}:{account}:{name}"
    return [call.request(f"sqs:{_SQS_ACTIONS.get(call.operation, call.operation)}", arn)]


def _topic(_: RequestMapper, call: Call) -> list[Request]:
    return [call.request("sns:Publish", call.params.get("TopicArn") or call.params["TargetArn"])]


def _secret(_: RequestMapper, call: Call) -> list[Request]:
    # The handlers name a secret by the ARN the template's Ref gives (PAGE_TOKEN_SECRET_ARN).
    return [call.request(f"secretsmanager:{call.operation}", call.params["SecretId"])]


def _put_events(_: RequestMapper, call: Call) -> list[Request]:
    requests = []
    for entry in call.params["Entries"]:
        bus = entry.get("EventBusName") or "default"
        arn = bus if bus.startswith("arn:") else call.arn("events", f"event-bus/{bus}")
        keys = {"events:source": (entry["Source"],), "events:detail-type": (entry["DetailType"],)}
        requests.append(call.request("events:PutEvents", arn, **keys))
    return requests


# ---- Batch ---------------------------------------------------------------------------------------


def _submit_job(mapper: RequestMapper, call: Call) -> list[Request]:
    # SubmitJob is authorized on the job queue and on the job definition's revision; tags given at
    # submission as batch:TagResource on the new job, with the tags as aws:RequestTag and aws:TagKeys.
    queue = call.params["jobQueue"]
    queue_arn = queue if queue.startswith("arn:") else call.arn("batch", f"job-queue/{queue}")
    # A fair-share queue's job names its share: the request carries it as batch:ShareIdentifier.
    share = call.params.get("shareIdentifier")
    context: dict[str, tuple[str, ...]] = {"batch:ShareIdentifier": (share,)} if share else {}
    requests = [
        call.request("batch:SubmitJob", queue_arn, **context),
        call.request("batch:SubmitJob", mapper.job_definition_arn(call.params["jobDefinition"]), **context),
    ]
    tags: Mapping[str, str] = call.params.get("tags") or {}
    if tags:
        job = call.response.get("jobArn") or call.arn("batch", "job/not-created")
        keys: dict[str, tuple[str, ...]] = {f"aws:RequestTag/{k}": (v,) for k, v in tags.items()}
        keys["aws:TagKeys"] = tuple(tags)
        requests.append(call.request("batch:TagResource", job, **keys))
    return requests


def _job_queue(_: RequestMapper, call: Call) -> list[Request]:
    # GetJobQueueSnapshot is authorized on the job queue (named by name or ARN).
    queue = call.params["jobQueue"]
    queue_arn = queue if queue.startswith("arn:") else call.arn("batch", f"job-queue/{queue}")
    return [call.request(f"batch:{call.operation}", queue_arn)]


def _batch_job(_: RequestMapper, call: Call) -> list[Request]:
    return [call.request(f"batch:{call.operation}", call.arn("batch", f"job/{call.params['jobId']}"))]


def _no_resource(service: str) -> Rule:
    """An action without resource-level permissions: authorized on "*"."""
    return lambda _, call: [call.request(f"{service}:{call.operation}", "*")]


# ---- S3 ------------------------------------------------------------------------------------------


def _object(_: RequestMapper, call: Call) -> list[Request]:
    bucket, key, version = call.params["Bucket"], call.params.get("Key", ""), call.params.get("VersionId")
    arn = f"arn:aws:s3:::{bucket}/{key}"
    operation = call.operation
    if operation in ("GetObject", "HeadObject"):
        # Reading a given version is s3:GetObjectVersion, not s3:GetObject.
        if version:
            return [call.request("s3:GetObjectVersion", arn, **{"s3:versionid": (version,)})]
        return [call.request("s3:GetObject", arn)]
    if operation == "AbortMultipartUpload":
        return [call.request("s3:AbortMultipartUpload", arn)]
    requests = [call.request("s3:PutObject", arn)]
    if call.params.get("Tagging"):
        requests.append(call.request("s3:PutObjectTagging", arn))
    if call.params.get("ACL"):
        requests.append(call.request("s3:PutObjectAcl", arn))
    return requests


def _list_bucket(_: RequestMapper, call: Call) -> list[Request]:
    prefix = call.params.get("Prefix", "")
    return [
        call.request("s3:ListBucket", f"arn:aws:s3:::{call.params['Bucket']}", **{"s3:prefix": (prefix,)})
    ]


# ---- What the ECS agent and Lambda call with a role ----------------------------------------------


def _log_stream(_: RequestMapper, call: Call) -> list[Request]:
    group, stream = call.params["logGroupName"], call.params["logStreamName"]
    return [
        call.request(f"logs:{call.operation}", call.arn("logs", f"log-group:{group}:log-stream:{stream}"))
    ]


def _repository(_: RequestMapper, call: Call) -> list[Request]:
    registry = call.params.get("registryId", call.account)
    arn = f"arn:aws:ecr:{call.region}:{registry}:repository/{call.params['repositoryName']}"
    return [call.request(f"ecr:{call.operation}", arn)]


_RULES: dict[tuple[str, str], Rule] = {
    **{("dynamodb", op): _item for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")},
    ("dynamodb", "BatchGetItem"): _batch_items,
    ("dynamodb", "BatchWriteItem"): _batch_items,
    ("dynamodb", "TransactWriteItems"): _transaction,
    ("dynamodb", "TransactGetItems"): _transaction,
    **{("dynamodbstreams", op): _stream for op in ("DescribeStream", "GetShardIterator", "GetRecords")},
    ("dynamodbstreams", "ListStreams"): _stream,
    **{
        ("sqs", op): _queue
        for op in (
            "SendMessage",
            "SendMessageBatch",
            "ReceiveMessage",
            "DeleteMessage",
            "DeleteMessageBatch",
            "GetQueueAttributes",
            "GetQueueUrl",
            "ChangeMessageVisibility",
        )
    },
    ("sns", "Publish"): _topic,
    ("secretsmanager", "GetSecretValue"): _secret,
    ("events", "PutEvents"): _put_events,
    ("batch", "SubmitJob"): _submit_job,
    ("batch", "TerminateJob"): _batch_job,
    ("batch", "CancelJob"): _batch_job,
    ("batch", "ListJobs"): _no_resource("batch"),
    ("batch", "DescribeJobs"): _no_resource("batch"),
    ("batch", "GetJobQueueSnapshot"): _job_queue,
    **{
        ("s3", op): _object
        for op in (
            "GetObject",
            "HeadObject",
            "PutObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
        )
    },
    ("s3", "ListObjectsV2"): _list_bucket,
    ("s3", "ListObjects"): _list_bucket,
    ("logs", "CreateLogStream"): _log_stream,
    ("logs", "PutLogEvents"): _log_stream,
    ("logs", "GetLogEvents"): _log_stream,
    ("ecr", "GetAuthorizationToken"): _no_resource("ecr"),
    **{
        ("ecr", op): _repository
        for op in ("BatchGetImage", "BatchCheckLayerAvailability", "GetDownloadUrlForLayer")
    },
}
