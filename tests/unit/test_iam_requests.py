"""What IAM authorizes for each call the roles make (iam/requests.py), the KMS use encryption at rest
adds (iam/encryption.py), the roles' policies as moto can enforce them (iam/roles.py), and the
template's comments the least-privilege checks read (iam/findings.py)."""

from __future__ import annotations

from typing import Any

import pytest

from batchplane_tools.iam.encryption import AtRest, EncryptionAtRest
from batchplane_tools.iam.evaluator import Request
from batchplane_tools.iam.findings import template_comments
from batchplane_tools.iam.requests import Call, RequestMapper, Unmapped
from batchplane_tools.iam.roles import moto_view, runs_as
from batchplane_tools.local.template import Stack

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
MAPPER = RequestMapper(lambda name: f"arn:aws:batch:us-east-1:123456789012:job-definition/{name}:3")


def requests(
    service: str, operation: str, params: dict[str, Any], response: Any = None, **kw: Any
) -> list[tuple[str, str]]:
    call = Call(service, operation, params, response or {}, "us-east-1", "123456789012", **kw)
    return [(r.action, r.resource) for r in MAPPER.requests(call)]


def test_a_transaction_is_authorized_item_by_item() -> None:
    items = [
        {"Put": {"TableName": "jobs", "Item": {}}},
        {"Update": {"TableName": "jobs", "Key": {}}},
        {"ConditionCheck": {"TableName": "other", "Key": {}}},
    ]
    assert requests("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:UpdateItem", TABLE),
        ("dynamodb:ConditionCheckItem", "arn:aws:dynamodb:us-east-1:123456789012:table/other"),
    ]


def test_a_query_of_an_index_is_on_the_index_and_batch_calls_on_each_table() -> None:
    assert requests("dynamodb", "Query", {"TableName": "jobs", "IndexName": "by_tenant"}) == [
        ("dynamodb:Query", f"{TABLE}/index/by_tenant")
    ]
    assert requests("dynamodb", "BatchGetItem", {"RequestItems": {"jobs": {}}}) == [
        ("dynamodb:BatchGetItem", TABLE)
    ]


def test_submit_job_is_authorized_on_queue_and_definition_revision_and_tags_on_the_new_job() -> None:
    params = {
        "jobQueue": "arn:aws:batch:us-east-1:123456789012:job-queue/spot",
        "jobDefinition": "wc",
        "tags": {"bp:job_id": "j"},
    }
    call = Call(
        "batch",
        "SubmitJob",
        params,
        {"jobArn": "arn:aws:batch:us-east-1:123456789012:job/abc"},
        "us-east-1",
        "123456789012",
    )
    made = MAPPER.requests(call)
    assert [(r.action, r.resource) for r in made] == [
        ("batch:SubmitJob", "arn:aws:batch:us-east-1:123456789012:job-queue/spot"),
        ("batch:SubmitJob", "arn:aws:batch:us-east-1:123456789012:job-definition/wc:3"),
        ("batch:TagResource", "arn:aws:batch:us-east-1:123456789012:job/abc"),
    ]
    assert made[2].context["aws:TagKeys"] == ("bp:job_id",)
    assert made[2].context["aws:RequestTag/bp:job_id"] == ("j",)


def test_a_queue_snapshot_is_authorized_on_the_job_queue_by_name_or_arn() -> None:
    queue = "arn:aws:batch:us-east-1:123456789012:job-queue/spot"
    assert requests("batch", "GetJobQueueSnapshot", {"jobQueue": queue}) == [
        ("batch:GetJobQueueSnapshot", queue)
    ]
    assert requests("batch", "GetJobQueueSnapshot", {"jobQueue": "spot"}) == [
        ("batch:GetJobQueueSnapshot", queue)
    ]


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("GetObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        (
            "GetObject",
            {"Bucket": "b", "Key": "k", "VersionId": "v"},
            [("s3:GetObjectVersion", "arn:aws:s3:::b/k")],
        ),
        ("HeadObject", {"Bucket": "b", "Key": "k", "IfMatch": '"e"'}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("PutObject", {"Bucket": "b", "Key": "k"}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        (
            "PutObject",
            {"Bucket": "b", "Key": "k", "Tagging": "a=b"},
            [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:PutObjectTagging", "arn:aws:s3:::b/k")],
        ),
        ("ListObjectsV2", {"Bucket": "b", "Prefix": "p/"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
    ],
)
def test_s3_calls_by_their_iam_action(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert requests("s3", operation, params) == expected


def test_sqs_batch_calls_are_their_single_messages_action_and_tls_is_a_condition_key() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/dispatch"
    call = Call("sqs", "SendMessageBatch", {"QueueUrl": url}, {}, "us-east-1", "123456789012", secure=False)
    [request] = MAPPER.requests(call)
    assert (request.action, request.resource) == (
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:123456789012:dispatch",
    )
    assert request.context["aws:SecureTransport"] == ("false",)


def test_put_events_is_authorized_on_each_entrys_bus() -> None:
    entries = [
        {"Source": "batchplane", "DetailType": "Job Failed", "EventBusName": "jobs"},
        {"Source": "x", "DetailType": "y"},
    ]
    assert requests("events", "PutEvents", {"Entries": entries}) == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/jobs"),
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
    ]


def test_stream_reads_name_their_stream_through_the_iterator() -> None:
    stream = f"{TABLE}/stream/2026"
    requests("dynamodbstreams", "GetShardIterator", {"StreamArn": stream}, {"ShardIterator": "it-1"})
    assert requests(
        "dynamodbstreams", "GetRecords", {"ShardIterator": "it-1"}, {"NextShardIterator": "it-2"}
    ) == [("dynamodb:GetRecords", stream)]
    assert requests("dynamodbstreams", "GetRecords", {"ShardIterator": "it-2"}) == [
        ("dynamodb:GetRecords", stream)
    ]


def test_an_operation_without_a_rule_is_refused() -> None:
    with pytest.raises(Unmapped, match="dynamodb:DeleteTable"):
        requests("dynamodb", "DeleteTable", {"TableName": "jobs"})


def test_moto_sees_s3_and_sqs_as_written_the_rest_on_star_with_the_names_it_checks() -> None:
    document = {
        "Statement": [
            {
                "Sid": "Mixed",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "dynamodb:PutItem", "batch:SubmitJob"],
                "Resource": "arn:x",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE},
        ]
    }
    assert moto_view(document)["Statement"] == [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:SendMessageBatch"], "Resource": "arn:x"},
        {
            "Effect": "Allow",
            "Action": [
                "dynamodb:PutItem",
                "batch:SubmitJob",
                "batch:submitjob",
                "dynamodb:TransactWriteItems",
            ],
            "Resource": "*",
        },
    ]


def test_publishing_to_a_topic_under_a_customer_key_needs_that_key() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    topic = "arn:aws:sns:us-east-1:123456789012:alerts"
    encryption = EncryptionAtRest(
        [
            AtRest("AlertTopic", topic, "customer managed key", key),
            AtRest("Q", "arn:aws:sqs:us-east-1:1:q", "SSE-SQS"),
        ],
        {},
    )
    implied = encryption.implied(Request("sns:Publish", topic))
    assert [(r.action, r.resource) for r in implied] == [("kms:GenerateDataKey", key), ("kms:Decrypt", key)]
    assert implied[0].context["kms:ViaService"] == ("sns.us-east-1.amazonaws.com",)
    assert encryption.implied(Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")) == []


def test_the_templates_keys_resolve_through_aliases_and_aws_managed_ones_need_nothing() -> None:
    stack = Stack(
        name="s",
        template={
            "Resources": {
                "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}}},
                "Alias": {
                    "Type": "AWS::KMS::Alias",
                    "Properties": {"AliasName": "alias/s-alerts", "TargetKeyId": {"Ref": "Key"}},
                },
                "ByAlias": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/s-alerts"}},
                "Managed": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}},
            }
        },
    )
    stack.refs.update(
        Key="k1",
        ByAlias="arn:aws:sns:us-east-1:123456789012:a",
        Managed="arn:aws:sns:us-east-1:123456789012:b",
    )
    stack.attributes[("Key", "Arn")] = "arn:aws:kms:us-east-1:123456789012:key/k1"
    found = {r.logical_id: (r.by, r.key_arn) for r in EncryptionAtRest.of(stack).resources}
    assert found == {
        "ByAlias": ("customer managed key", "arn:aws:kms:us-east-1:123456789012:key/k1"),
        "Managed": ("AWS managed key aws/sns", None),
    }


def test_a_function_without_a_role_of_the_template_is_refused() -> None:
    stack = Stack(
        name="s",
        template={"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Policies": []}}}},
    )
    with pytest.raises(ValueError, match="Fn has no Role of this template"):
        runs_as(stack)


def test_a_resources_comments_are_those_in_its_block_and_just_above_it() -> None:
    text = """Resources:
  # about the role
  Role:
    Type: AWS::IAM::Role
    Properties:
      # sqs:SendMessage: the DLQ
      Name: x  # trailing
  Other:
    Type: X
"""
    comments = template_comments(text)
    assert comments["Role"].split("\n") == [" about the role", " sqs:SendMessage: the DLQ", " trailing"]
    assert comments["Other"] == ""
