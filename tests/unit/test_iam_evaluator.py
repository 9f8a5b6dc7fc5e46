"""The IAM evaluator against IAM's documented rules: wildcards in actions and ARNs, Deny over Allow,
NotAction and NotResource, conditions (present, missing, IfExists, Null, set operators), resource
policies in one account, and a KMS key policy that must allow."""

from __future__ import annotations

from typing import Any

import pytest

from batchplane_tools.iam.evaluator import (
    Outcome,
    Policy,
    PrincipalIdentity,
    Request,
    Unsupported,
    arn_matches,
    evaluate,
)

ROLE = PrincipalIdentity("arn:aws:iam::123456789012:role/stack-ApiFunctionRole", "123456789012")
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"


def policy(*statements: dict[str, Any]) -> Policy:
    return Policy.parse("Role/policy", {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def outcome(request: Request, *policies: Policy, resource_policy: Policy | None = None, **kw: Any) -> Outcome:
    return evaluate(request, ROLE, list(policies), resource_policy, **kw).outcome


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("dynamodb:GetItem", "dynamodb:GetItem", True),
        ("DynamoDB:getitem", "dynamodb:GetItem", True),  # actions are case-insensitive
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:Get*", "dynamodb:BatchGetItem", False),
        ("*", "sqs:SendMessage", True),
        ("sqs:Send", "sqs:SendMessage", False),
    ],
)
def test_actions_match_case_insensitively_with_wildcards(pattern: str, action: str, matches: bool) -> None:
    expected = Outcome.ALLOWED if matches else Outcome.IMPLICIT_DENY
    assert outcome(Request(action, TABLE), policy(allow(pattern))) is expected


@pytest.mark.parametrize(
    ("pattern", "arn", "matches"),
    [
        (TABLE, TABLE, True),
        (f"{TABLE}/index/*", f"{TABLE}/index/by_tenant", True),
        (f"{TABLE}/index/*", TABLE, False),
        ("arn:aws:dynamodb:*:123456789012:table/jobs", TABLE, True),
        ("arn:aws:dynamodb:us-east-?:123456789012:table/jobs", TABLE, True),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/Jobs", TABLE, False),  # ARNs are case-sensitive
        ("arn:aws:s3:::bucket/incoming/*", "arn:aws:s3:::bucket/incoming/a/b.txt", True),
        ("arn:aws:s3:::bucket/incoming/*", "arn:aws:s3:::bucket/outputs/a.txt", False),
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/batch/job:*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/batch/job:log-stream:x",
            True,
        ),
        ("arn:aws:dynamodb:*", TABLE, True),  # a trailing * reaches across the segments after it
        ("arn:aws:dynamodb:us-east-1", TABLE, False),
        ("arn:aws:sqs:*:123456789012:queue", "arn:aws:sqs:us-east-1:123456789012:queue", True),
    ],
)
def test_resources_match_as_arns_segment_by_segment(pattern: str, arn: str, matches: bool) -> None:
    assert arn_matches(pattern, arn) is matches


def test_an_action_without_resource_level_permissions_needs_a_statement_on_star() -> None:
    request = Request("batch:ListJobs", "*")
    assert outcome(request, policy(allow("batch:ListJobs", "arn:aws:batch:*"))) is Outcome.IMPLICIT_DENY
    assert outcome(request, policy(allow("batch:ListJobs", "*"))) is Outcome.ALLOWED


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": TABLE}
    decision = evaluate(Request("dynamodb:GetItem", TABLE), ROLE, [policy(allow("*")), policy(deny)])
    assert decision.outcome is Outcome.EXPLICIT_DENY
    assert [s.effect for s in decision.denied_by] == ["Deny"]


def test_not_action_and_not_resource_match_everything_else() -> None:
    not_action = {"Effect": "Allow", "NotAction": "dynamodb:DeleteItem", "Resource": TABLE}
    not_resource = {"Effect": "Allow", "Action": "dynamodb:GetItem", "NotResource": f"{TABLE}/index/*"}
    assert outcome(Request("dynamodb:GetItem", TABLE), policy(not_action)) is Outcome.ALLOWED
    assert outcome(Request("dynamodb:DeleteItem", TABLE), policy(not_action)) is Outcome.IMPLICIT_DENY
    assert outcome(Request("dynamodb:GetItem", TABLE), policy(not_resource)) is Outcome.ALLOWED
    assert (
        outcome(Request("dynamodb:GetItem", f"{TABLE}/index/x"), policy(not_resource))
        is Outcome.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("condition", "context", "allowed"),
    [
        ({"StringEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("1",)}, True),
        ({"StringEquals": {"aws:SourceAccount": ["2", "1"]}}, {"aws:sourceaccount": ("1",)}, True),
        ({"StringEquals": {"aws:SourceAccount": "1"}}, {"aws:SourceAccount": ("2",)}, False),
        ({"StringEquals": {"aws:SourceAccount": "1"}}, {}, False),  # a missing key fails a positive test
        ({"StringNotEquals": {"aws:SourceAccount": "1"}}, {}, True),  # and passes a negated one
        ({"StringEqualsIfExists": {"aws:SourceAccount": "1"}}, {}, True),
        ({"StringLike": {"s3:prefix": "incoming/*"}}, {"s3:prefix": ("incoming/a/",)}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": ("true",)}, False),
        ({"Null": {"aws:SourceArn": "true"}}, {}, True),
        ({"Null": {"aws:SourceArn": "true"}}, {"aws:SourceArn": ("arn:x",)}, False),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket-*"}},
            {"aws:SourceArn": ("arn:aws:s3:::bucket-a",)},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ("b", "a")}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ("b", "a")}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ("5",)}, True),
    ],
)
def test_conditions_follow_iams_rules(
    condition: dict[str, Any], context: dict[str, Any], allowed: bool
) -> None:
    request = Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", context)
    expected = Outcome.ALLOWED if allowed else Outcome.IMPLICIT_DENY
    assert outcome(request, policy(allow("sqs:SendMessage", Condition=condition))) is expected


def test_the_keys_a_request_did_not_carry_are_reported_by_statement() -> None:
    statement = allow(
        "sqs:SendMessage", Sid="Guarded", Condition={"StringEquals": {"aws:SourceAccount": "1"}}
    )
    decision = evaluate(Request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q"), ROLE, [policy(statement)])
    assert decision.unevaluated == {("Role/policy#Guarded", "aws:SourceAccount")}
    assert decision.evaluated == frozenset()


def test_principal_keys_come_from_who_asks() -> None:
    condition = {"ArnEquals": {"aws:PrincipalArn": ROLE.role_arn}}
    assert (
        outcome(Request("sqs:SendMessage", "*"), policy(allow("*", Condition=condition))) is Outcome.ALLOWED
    )


def test_a_resource_policy_allows_the_principal_it_names_or_denies_everyone() -> None:
    bucket = "arn:aws:s3:::bucket"
    request = Request("s3:GetObject", f"{bucket}/k", {"aws:SecureTransport": ("false",)})
    names_role = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE.role_arn},
            "Action": "s3:GetObject",
            "Resource": f"{bucket}/*",
        }
    )
    a_service = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:*",
            "Resource": "*",
        }
    )
    tls_only = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": f"{bucket}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    assert outcome(Request("s3:GetObject", f"{bucket}/k"), resource_policy=names_role) is Outcome.ALLOWED
    assert outcome(Request("s3:GetObject", f"{bucket}/k"), resource_policy=a_service) is Outcome.IMPLICIT_DENY
    assert outcome(request, policy(allow("s3:*")), resource_policy=tls_only) is Outcome.EXPLICIT_DENY


def test_a_key_policy_must_allow_directly_or_delegate_to_the_accounts_iam_policies() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    request = Request("kms:Decrypt", key)
    delegates = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    services_only = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    granted = policy(allow("kms:Decrypt", key))
    assert outcome(request, granted, resource_policy=delegates, key_policy=True) is Outcome.ALLOWED
    assert outcome(request, resource_policy=delegates, key_policy=True) is Outcome.IMPLICIT_DENY
    assert outcome(request, granted, resource_policy=services_only, key_policy=True) is Outcome.IMPLICIT_DENY


@pytest.mark.parametrize(
    "statement",
    [
        allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*"),
        allow("sqs:SendMessage", Condition={"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
        {"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "*", "Resource": "*"},
    ],
)
def test_what_is_not_modelled_is_refused_not_guessed(statement: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        outcome(Request("s3:GetObject", "arn:aws:s3:::bucket/u/k"), policy(statement))
