"""The template's IAM roles as CloudFormation makes them: each role's trust policy, inline policies,
attached managed policies and the policy resources that name it, with every Ref, GetAtt and Sub
resolved against a provisioned stack; who runs as each (functions, job definitions); and the same
roles created on moto, with the view of their policies that moto can enforce faithfully.

A function without a `Role` of this template is refused: SAM would generate one, with AWS managed
policies on "*" that no statement here describes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from batchplane_tools.iam.evaluator import Policy, PrincipalIdentity
from batchplane_tools.local.template import ACCOUNT, Stack

# moto checks the resource of S3 and SQS calls; for other services it matches only "*" (a statement on
# an ARN denies even what it allows), so their statements reach moto on "*" and the evaluator checks
# their resources. moto names Batch's actions in lower case (batch:submitjob), and some calls by their
# API where IAM authorizes another action: a DynamoDB transaction (each item's own action) and SQS's
# batch calls (the single message's action). Those API names join the actions that authorize them.
MOTO_CHECKS_RESOURCES = frozenset({"s3", "sqs"})
_MOTO_API_NAMES = {
    "dynamodb:TransactWriteItems": {
        "dynamodb:putitem",
        "dynamodb:updateitem",
        "dynamodb:deleteitem",
        "dynamodb:conditioncheckitem",
    },
    "dynamodb:TransactGetItems": {"dynamodb:getitem"},
    "sqs:SendMessageBatch": {"sqs:sendmessage"},
    "sqs:DeleteMessageBatch": {"sqs:deletemessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:changemessagevisibility"},
}
_POLICY_RESOURCES = ("AWS::IAM::Policy", "AWS::IAM::RolePolicy", "AWS::IAM::ManagedPolicy")


@cache
def _aws_managed() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    loaded: dict[str, Any] = json.loads(aws_managed_policies_data)
    return loaded


def managed_policy_document(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document (moto's copy of AWS's), by its ARN."""
    name = arn.rsplit("/", 1)[-1]
    if not arn.startswith("arn:aws:iam::aws:policy/") or name not in _aws_managed():
        raise KeyError(f"unknown AWS managed policy {arn}")
    document: dict[str, Any] = _aws_managed()[name]["Document"]
    return document


@dataclass(frozen=True)
class Role:
    logical_id: str
    name: str
    arn: str
    trust: Mapping[str, Any]
    documents: Mapping[str, Mapping[str, Any]]  # policy name -> document, resolved

    @cached_property
    def policies(self) -> list[Policy]:
        return [Policy.parse(f"{self.logical_id}/{name}", doc) for name, doc in self.documents.items()]

    @property
    def identity(self) -> PrincipalIdentity:
        return PrincipalIdentity(self.arn, ACCOUNT)


def role_name(stack: Stack, logical_id: str) -> str:
    return f"{stack.name}-{logical_id}"


def name_roles(stack: Stack) -> None:
    """Give every role its name and ARN in `stack` (Ref and GetAtt Arn), as CloudFormation would."""
    for logical, _ in stack.resources("AWS::IAM::Role"):
        stack.refs[logical] = role_name(stack, logical)
        stack.attributes[(logical, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{role_name(stack, logical)}"


def _attached(stack: Stack, logical: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The policy resources that attach to the role `logical` (by Roles or RoleName)."""
    name = stack.refs[logical]
    for kind in _POLICY_RESOURCES:
        for policy_logical, props in stack.resources(kind):
            named = [stack.resolve(r) for r in props.get("Roles", [])]
            if name in named or stack.resolve(props.get("RoleName")) == name:
                yield policy_logical, stack.resolve(props["PolicyDocument"])


def roles(stack: Stack) -> dict[str, Role]:
    """The template's roles by logical id (`name_roles` first), their policies resolved."""
    found: dict[str, Role] = {}
    for logical, props in stack.resources("AWS::IAM::Role"):
        documents: dict[str, Mapping[str, Any]] = {
            p["PolicyName"]: stack.resolve(p["PolicyDocument"]) for p in props.get("Policies", [])
        }
        for arn in props.get("ManagedPolicyArns", []):
            resolved = str(stack.resolve(arn))
            documents[resolved.rsplit("/", 1)[-1]] = managed_policy_document(resolved)
        documents.update(_attached(stack, logical))
        found[logical] = Role(
            logical_id=logical,
            name=stack.refs[logical],
            arn=stack.attributes[(logical, "Arn")],
            trust=stack.resolve(props["AssumeRolePolicyDocument"]),
            documents=documents,
        )
    return found


def _role_of(value: Any, what: str) -> str:
    if isinstance(value, Mapping) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
        return str(value["Fn::GetAtt"][0])
    raise ValueError(f"{what} is not a role of this template (Fn::GetAtt <Role>.Arn): {value!r}")


def runs_as(stack: Stack) -> dict[str, str]:
    """Who runs as which role: each function's and each job definition's role, by their logical id
    (a job definition's execution role as "<JobDefinition>/execution")."""
    found: dict[str, str] = {}
    for logical, props in stack.resources("AWS::Serverless::Function"):
        if "Policies" in props or "Role" not in props:
            raise ValueError(f"{logical} has no Role of this template: SAM would generate one")
        found[logical] = _role_of(props["Role"], f"{logical}.Role")
    for logical, props in stack.resources("AWS::Batch::JobDefinition"):
        container = props["ContainerProperties"]
        found[logical] = _role_of(container["JobRoleArn"], f"{logical} JobRoleArn")
        found[f"{logical}/execution"] = _role_of(container["ExecutionRoleArn"], f"{logical} ExecutionRoleArn")
    return found


def _statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = document.get("Statement", [])
    return [dict(raw)] if isinstance(raw, Mapping) else [dict(s) for s in raw]


def _moto_names(actions: list[str]) -> list[str]:
    """The names moto may check for what `actions` grant: each as written, Batch's in lower case, and
    the API names of the calls IAM authorizes as one of them."""
    named = {a.lower() for a in actions}
    extra = sorted(a for a in named if a.startswith("batch:"))
    extra += [api for api, granted_by in _MOTO_API_NAMES.items() if named & granted_by]
    return actions + extra


def moto_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document as moto can enforce it: S3 and SQS actions on their resources as written, the rest
    on "*" (their Denies, which would then deny everything, left to the evaluator), each action under
    the names moto checks (`_moto_names`), and no Condition (moto takes an unmet one for a Deny; the
    evaluator checks them). A NotAction statement goes as written."""
    statements: list[dict[str, Any]] = []
    for statement in _statements(document):
        statement.pop("Condition", None)
        statement.pop("Sid", None)
        if "NotAction" in statement:
            statements.append(statement)
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        exact = [a for a in actions if a.split(":")[0].lower() in MOTO_CHECKS_RESOURCES]
        widened = [a for a in actions if a not in exact]
        if exact:
            statements.append({**statement, "Action": _moto_names(exact)})
        if widened and statement["Effect"] == "Allow":
            scoped = {k: v for k, v in statement.items() if k not in ("Resource", "NotResource")}
            statements.append({**scoped, "Action": _moto_names(widened), "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def create_on_moto(role: Role, iam: Any) -> None:
    """The role on moto, with its policies as moto can enforce them (`moto_view`)."""
    iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust))
    for name, document in role.documents.items():
        iam.put_role_policy(
            RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(moto_view(document))
        )
