"""Encryption at rest as the template sets it, and the KMS requests a call makes on the caller's behalf.

A call on a resource encrypted under a customer managed key is two authorizations: the call, and the
service's use of the key as the caller (kms:ViaService), which the caller's policies and the key's
policy must both allow. Under SSE-S3, SSE-SQS or an AWS managed key (aws/dynamodb, aws/sns) the
caller needs no KMS permission: the service holds the key (or a grant on it) itself.

What each call needs, from the services' documentation: SNS Publish to an encrypted topic
kms:GenerateDataKey and kms:Decrypt; SQS SendMessage the same and ReceiveMessage kms:Decrypt; S3
PutObject kms:GenerateDataKey and GetObject kms:Decrypt under SSE-KMS. A table under a customer
managed key is refused: DynamoDB's use of it is authorized by the key policy's grants, which this
module does not model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchplane_tools.iam.evaluator import Policy, Request, Unsupported
from batchplane_tools.local.template import ACCOUNT, REGION, Stack

# The KMS actions a service asks for as the caller, by the caller's action.
_IMPLIED = {
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "s3:PutObject": ("kms:GenerateDataKey",),
    "s3:GetObject": ("kms:Decrypt",),
    "s3:GetObjectVersion": ("kms:Decrypt",),
}


@dataclass(frozen=True)
class AtRest:
    """How one resource is encrypted: by whom (`by`), and under which customer managed key, if any."""

    logical_id: str
    arn: str
    by: str
    key_arn: str | None = None

    def holds(self, resource: str) -> bool:
        return resource == self.arn or resource.startswith(f"{self.arn}/")


class EncryptionAtRest:
    """The template's topics, queues, tables and buckets, each with its encryption at rest, and the
    customer managed keys' policies."""

    def __init__(self, resources: list[AtRest], key_policies: Mapping[str, Policy]) -> None:
        self.resources = resources
        self.key_policies = dict(key_policies)

    @classmethod
    def of(cls, stack: Stack) -> EncryptionAtRest:
        keys = _Keys(stack)
        found = [
            *(_topic(stack, keys, logical, props) for logical, props in stack.resources("AWS::SNS::Topic")),
            *(_queue(stack, keys, logical, props) for logical, props in stack.resources("AWS::SQS::Queue")),
            *(_table(stack, logical, props) for logical, props in stack.resources("AWS::DynamoDB::Table")),
            *(_bucket(stack, keys, logical, props) for logical, props in stack.resources("AWS::S3::Bucket")),
        ]
        policies = {
            stack.attributes[(logical, "Arn")]: Policy.parse(
                f"{logical} key policy", stack.resolve(p["KeyPolicy"])
            )
            for logical, p in stack.resources("AWS::KMS::Key")
        }
        return cls(found, policies)

    def at_rest(self, resource: str) -> AtRest | None:
        return next((r for r in self.resources if r.holds(resource)), None)

    def implied(self, request: Request) -> list[Request]:
        """The KMS requests the service makes as the caller to serve `request`."""
        at_rest = self.at_rest(request.resource)
        if at_rest is None or at_rest.key_arn is None:
            return []
        if at_rest.arn.startswith("arn:aws:dynamodb:"):
            raise Unsupported(
                f"{at_rest.logical_id} is under a customer managed key: model DynamoDB's use of it"
            )
        service = request.action.split(":")[0]
        keys = {"kms:ViaService": (f"{service}.{REGION}.amazonaws.com",), "kms:CallerAccount": (ACCOUNT,)}
        return [Request(action, at_rest.key_arn, keys) for action in _IMPLIED.get(request.action, ())]


class _Keys:
    """A KmsMasterKeyId as the template gives it (key ARN, key id, alias) -> the customer managed key's
    ARN, or None for an AWS managed key (alias/aws/...)."""

    def __init__(self, stack: Stack) -> None:
        self.aliases = {
            str(stack.resolve(p["AliasName"])): str(stack.resolve(p["TargetKeyId"]))
            for _, p in stack.resources("AWS::KMS::Alias")
        }

    def arn(self, given: Any) -> str | None:
        key = str(given).split(":", 5)[-1] if str(given).startswith("arn:") else str(given)
        if key.startswith("alias/aws/"):
            return None
        if key.startswith("alias/"):
            if key not in self.aliases:
                raise Unsupported(f"KMS alias {key} is not one of the template's")
            return self.arn(self.aliases[key])
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key.removeprefix('key/')}"


def _topic(stack: Stack, keys: _Keys, logical: str, props: Mapping[str, Any]) -> AtRest:
    arn = stack.refs[logical]
    if "KmsMasterKeyId" not in props:
        return AtRest(logical, arn, "not encrypted")
    key = keys.arn(stack.resolve(props["KmsMasterKeyId"]))
    return AtRest(logical, arn, "customer managed key" if key else "AWS managed key aws/sns", key)


def _queue(stack: Stack, keys: _Keys, logical: str, props: Mapping[str, Any]) -> AtRest:
    arn = stack.attributes[(logical, "Arn")]
    if "KmsMasterKeyId" in props:
        key = keys.arn(stack.resolve(props["KmsMasterKeyId"]))
        return AtRest(logical, arn, "customer managed key" if key else "AWS managed key aws/sqs", key)
    return AtRest(logical, arn, "SSE-SQS" if props.get("SqsManagedSseEnabled", True) else "not encrypted")


def _table(stack: Stack, logical: str, props: Mapping[str, Any]) -> AtRest:
    arn = stack.attributes[(logical, "Arn")]
    sse = props.get("SSESpecification", {})
    if sse.get("KMSMasterKeyId"):
        return AtRest(logical, arn, "customer managed key", str(stack.resolve(sse["KMSMasterKeyId"])))
    return AtRest(logical, arn, "AWS managed key aws/dynamodb" if sse.get("SSEEnabled") else "AWS owned key")


def _bucket(stack: Stack, keys: _Keys, logical: str, props: Mapping[str, Any]) -> AtRest:
    arn = stack.attributes[(logical, "Arn")]
    rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    default = rules[0].get("ServerSideEncryptionByDefault", {}) if rules else {}
    if default.get("SSEAlgorithm", "AES256") == "AES256":
        return AtRest(logical, arn, "SSE-S3")
    given = default.get("KMSMasterKeyID")
    key = keys.arn(stack.resolve(given)) if given else None
    return AtRest(logical, arn, "SSE-KMS, customer managed key" if key else "SSE-KMS, aws/s3", key)
