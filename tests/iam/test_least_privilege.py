"""Least privilege, proven: every flow runs once with each function's, job's and agent's own role
(tests/iam/tour.py). moto enforces the roles' actions, and the resources of S3 and SQS calls; every
call is also recorded as IAM requests and judged by the evaluator, which checks what moto cannot (the
resources of DynamoDB, SNS, EventBridge, Batch and KMS calls, conditions, the KMS use that encryption
at rest adds, resource and key policies)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from batchplane_tools.iam.evaluator import Outcome, Request, evaluate
from batchplane_tools.iam.findings import (
    judge,
    kms_beyond_use,
    refusals,
    resource_policies,
    unreasoned_conditions,
    unused_uncommented,
)
from batchplane_tools.iam.roles import Role
from batchplane_tools.local.template import REGION
from tests.iam.conftest import Toured


def _running_roles(toured: Toured) -> list[Role]:
    return [toured.iam.roles[r] for r in sorted(set(toured.iam.runs_as.values()))]


def test_each_function_runs_as_a_role_of_its_own_and_jobs_as_theirs(toured: Toured) -> None:
    runs_as = toured.iam.runs_as
    functions = {k: v for k, v in runs_as.items() if "JobDefinition" not in k}
    jobs = {k: v for k, v in runs_as.items() if "JobDefinition" in k}

    assert sorted(functions) == sorted(f for f, _ in toured.iam.stack.resources("AWS::Serverless::Function"))
    assert len(set(functions.values())) == len(functions)  # one role per function
    assert set(jobs.values()) == {"WorkerJobRole", "WorkerExecutionRole"}
    assert not set(functions.values()) & set(jobs.values())


def test_every_flow_ran_to_its_end_under_the_roles(toured: Toured) -> None:
    failed = "\n\n".join(f"{flow}:\n{trace}" for flow, trace in toured.tour.failures.items())
    assert toured.tour.failures == {}, failed


def test_every_call_each_role_made_is_allowed_by_its_own_policies(toured: Toured) -> None:
    # Given every call every role made in the tour, and the requests the evaluator judged

    # When the refusals are collected (moto's, the evaluator's, calls no rule describes)
    refused = refusals(toured.iam.recorder, toured.verdicts)

    # Then there are none, and every role that runs something made calls (the check is not vacuous)
    assert refused == [], "\n".join(refused)
    assert {c.role for c in toured.iam.recorder.calls} == set(toured.iam.runs_as.values())
    assert len(toured.verdicts) > 500


def test_every_granted_action_is_used_or_the_template_says_which_path_uses_it(toured: Toured) -> None:
    found = [
        u
        for role in _running_roles(toured)
        for u in unused_uncommented(role, toured.verdicts, toured.comments)
    ]
    assert found == [], "\n".join(found)


def test_kms_each_role_may_use_exactly_the_keys_of_what_it_touches(toured: Toured) -> None:
    # Then no role holds a KMS grant that none of its requests needed
    beyond = [u for role in _running_roles(toured) for u in kms_beyond_use(role, toured.verdicts)]
    assert beyond == [], "\n".join(beyond)

    # and the one key under a customer managed key's use, the alert topic's, was needed and allowed
    key = toured.iam.stack.attributes[("AlertsKey", "Arn")]
    used = {(v.call.role, v.request.action, v.request.resource) for v in toured.verdicts if v.implied_by}
    assert used == {
        ("OutboxFunctionRole", "kms:GenerateDataKey", key),
        ("OutboxFunctionRole", "kms:Decrypt", key),
    }
    # the queues (SSE-SQS), buckets (SSE-S3) and table (aws/dynamodb) ask nothing of their callers
    kinds = {r.logical_id: r.by for r in toured.iam.encryption.resources}
    assert kinds["AlertTopic"] == "customer managed key"
    assert {
        kinds[q] for q in ("DispatchQueue", "IngestQueue", "StateChangeDLQ", "OutputsDLQ", "OutboxDLQ")
    } == {"SSE-SQS"}
    assert {kinds["IngestBucket"], kinds["ArtifactBucket"], kinds["JobsTable"]} == {
        "SSE-S3",
        "AWS managed key aws/dynamodb",
    }


def test_condition_keys_are_evaluated_or_reasoned_in_the_template(toured: Toured) -> None:
    # Then every condition no request carried a key for has a comment on its resource
    found = unreasoned_conditions(_running_roles(toured), toured.verdicts, toured.comments)
    assert found == [], "\n".join(found)

    # and those the requests carry were evaluated: the buckets' TLS-only Deny on the workers' requests,
    # the outbox's "batchplane events only" on its PutEvents
    evaluated = {pair for v in toured.verdicts for pair in v.decision.evaluated}
    for policy in ("IngestBucketPolicy", "ArtifactBucketPolicy"):
        assert (f"{policy}/bucket policy#DenyInsecureTransport", "aws:SecureTransport") in evaluated
    assert ("OutboxFunctionRole/calls#JobEvents", "events:source") in evaluated


def test_the_outbox_may_put_batchplane_events_on_the_job_bus_and_no_others(toured: Toured) -> None:
    role, bus = toured.iam.roles["OutboxFunctionRole"], toured.iam.stack.attributes[("JobEventBus", "Arn")]

    def put(source: str) -> Outcome:
        request = Request("events:PutEvents", bus, {"events:source": (source,)})
        return evaluate(request, role.identity, role.policies).outcome

    assert put("batchplane") is Outcome.ALLOWED
    assert put("aws.batch") is Outcome.IMPLICIT_DENY


def _unrecorded_client(toured: Toured, role: str, service: str) -> Any:
    credentials = toured.iam.credentials(role)
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    ).client(service)


def test_a_call_outside_the_role_is_refused_by_moto_and_by_the_evaluator(toured: Toured) -> None:
    # Given the API's role, which may send to the dispatch queue only
    role = toured.iam.roles["ApiFunctionRole"]
    dlq = toured.iam.stack.refs["IngestDLQ"]

    # When it sends to the ingest DLQ
    with pytest.raises(ClientError) as refused:
        _unrecorded_client(toured, "ApiFunctionRole", "sqs").send_message(QueueUrl=dlq, MessageBody="{}")

    # Then moto refuses it, and so does the evaluator
    assert refused.value.response["Error"]["Code"] == "403"
    arn = toured.iam.stack.attributes[("IngestDLQ", "Arn")]
    assert (
        evaluate(Request("sqs:SendMessage", arn), role.identity, role.policies).outcome
        is Outcome.IMPLICIT_DENY
    )


def test_moto_lets_a_table_read_outside_the_role_through_the_evaluator_does_not(toured: Toured) -> None:
    # Given the outbox's role, which may Query the jobs table but none of its indexes
    role = toured.iam.roles["OutboxFunctionRole"]
    table = toured.iam.env["JOBS_TABLE_NAME"]

    # When it queries the by_tenant_status index, moto lets it (it cannot check DynamoDB's resources)
    _unrecorded_client(toured, "OutboxFunctionRole", "dynamodb").query(
        TableName=table,
        IndexName="by_tenant_status",
        KeyConditionExpression="gsi2pk = :t",
        ExpressionAttributeValues={":t": {"S": "TENANT#analytics"}},
    )

    # Then the evaluator, which does, refuses it
    index = f"{toured.iam.stack.attributes[('JobsTable', 'Arn')]}/index/by_tenant_status"
    decision = evaluate(Request("dynamodb:Query", index), role.identity, role.policies)
    assert decision.outcome is Outcome.IMPLICIT_DENY


def _without(role: Role, sid: str) -> Role:
    documents = {
        name: {**doc, "Statement": [s for s in doc["Statement"] if s.get("Sid") != sid]}
        for name, doc in role.documents.items()
    }
    return dataclasses.replace(role, documents=json.loads(json.dumps(documents)))


@pytest.mark.parametrize(
    ("role", "sid", "expected"),
    [
        (
            "OutboxFunctionRole",
            "Alert",
            "sns:Publish on arn:aws:sns:us-east-1:123456789012:batchplane-iam-alerts",
        ),
        ("OutboxFunctionRole", "AlertKey", "kms:GenerateDataKey on arn:aws:kms:us-east-1:123456789012:key/"),
        (
            "WorkerJobRole",
            "WriteOutputs",
            "s3:PutObject on arn:aws:s3:::batchplane-iam-artifactbucket/outputs/",
        ),
        (
            "SweeperFunctionRole",
            "JobsTableQuery",
            "dynamodb:Query on arn:aws:dynamodb:us-east-1:123456789012",
        ),
    ],
)
def test_a_grant_taken_away_fails_naming_action_resource_role_and_flow(
    toured: Toured, role: str, sid: str, expected: str
) -> None:
    # Given the template's roles, one of them without one of its statements
    roles = {**toured.iam.roles, role: _without(toured.iam.roles[role], sid)}

    # When the tour's calls are judged against them
    verdicts = judge(toured.iam.recorder, roles, toured.iam.encryption, resource_policies(toured.iam.stack))
    refused = [r for r in refusals(toured.iam.recorder, verdicts) if "refused by moto" not in r]

    # Then the refusals name the action and resource, the role and the flow that needed it; and only
    # what the statement granted is refused
    service = expected.split(":", maxsplit=1)[0]
    assert any(r.startswith(expected) for r in refused), "\n".join(refused)
    assert all(r.startswith(f"{service}:") and f"{role} via " in r and "in flow " in r for r in refused)
