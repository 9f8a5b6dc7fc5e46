"""IAM policy evaluation for one principal in one account, following AWS's documented rules.

- Actions match case-insensitively, with `*` and `?` wildcards; `NotAction` matches every other action.
- Resources match as ARNs: segment by segment (partition, service, region, account, resource), `*` and
  `?` within a segment, and a `*` ending the last segment given reaches across the colons after it. A
  request on `*` (an action without resource-level permissions) matches only a statement on `*`.
  `NotResource` matches every other resource.
- Conditions: every operator of a statement and every key of an operator must hold; a key's policy
  values are alternatives. `...IfExists`, `Null`, `ForAnyValue:` and `ForAllValues:` as documented, and
  a key the request does not carry fails a positive operator and passes a negated one. The keys a
  request did not carry are reported (`Decision.unevaluated`): what the recorded request could not
  say must be reasoned elsewhere (tests/iam/ asks the template for a comment).
- An explicit Deny anywhere wins; otherwise an Allow in an identity policy, or in the resource's
  policy for this principal (same account), allows. A KMS key policy must allow in every case: by
  naming the principal, or by naming the account and so delegating to the identity policies.

Not modelled, and refused where met rather than guessed: policy variables (`${...}`), `NotPrincipal`,
date and IP operators. Permission boundaries, session policies and SCPs are not used by the stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

Context = Mapping[str, tuple[str, ...]]


class Unsupported(ValueError):
    """A policy element the evaluator does not model: refused rather than evaluated wrongly."""


@dataclass(frozen=True, eq=False)
class Request:
    """One authorization IAM makes: an action on a resource ARN (or `*`), with the condition keys the
    request carries (names in any case, each with its values)."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.action} on {self.resource}"


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` any one."""
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return glob_matches(pattern, action, ignore_case=True)


def arn_matches(pattern: str, arn: str) -> bool:
    """Does a Resource (or ArnLike value) match a request's ARN? Segment by segment, as IAM does."""
    if pattern == "*":
        return True
    if arn == "*":
        return False
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    if len(actual) < 6:
        return glob_matches(pattern, arn)
    if len(wanted) < 6:
        if not wanted[-1].endswith("*"):
            return False
        last = len(wanted) - 1
        return all(glob_matches(w, a) for w, a in zip(wanted[:last], actual[:last], strict=True)) and (
            glob_matches(wanted[last], ":".join(actual[last:]))
        )
    return all(glob_matches(w, a) for w, a in zip(wanted, actual, strict=True))


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


# Condition operators: how one policy value tests one request value; the negated ones invert.
def _string(p: str, v: str) -> bool:
    return p == v


def _string_ic(p: str, v: str) -> bool:
    return p.lower() == v.lower()


def _numeric(compare: str) -> Any:
    def test(p: str, v: str) -> bool:
        a, b = float(v), float(p)
        return {"eq": a == b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[compare]

    return test


_TESTS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string, False),
    "StringNotEquals": (_string, True),
    "StringEqualsIgnoreCase": (_string_ic, False),
    "StringNotEqualsIgnoreCase": (_string_ic, True),
    "StringLike": (glob_matches, False),
    "StringNotLike": (glob_matches, True),
    "ArnEquals": (arn_matches, False),
    "ArnLike": (arn_matches, False),
    "ArnNotEquals": (arn_matches, True),
    "ArnNotLike": (arn_matches, True),
    "Bool": (_string_ic, False),
    "NumericEquals": (_numeric("eq"), False),
    "NumericNotEquals": (_numeric("eq"), True),
    "NumericLessThan": (_numeric("lt"), False),
    "NumericLessThanEquals": (_numeric("le"), False),
    "NumericGreaterThan": (_numeric("gt"), False),
    "NumericGreaterThanEquals": (_numeric("ge"), False),
}


@dataclass(frozen=True)
class Condition:
    """One key of one operator of a Condition block: `{"StringEquals": {"aws:SourceAccount": "1"}}`."""

    operator: str
    key: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        qualifier, _, base = self.operator.rpartition(":")
        if base != "Null" and base.removesuffix("IfExists") not in _TESTS:
            raise Unsupported(f"condition operator {self.operator} is not modelled")
        if qualifier not in ("", "ForAnyValue", "ForAllValues"):
            raise Unsupported(f"condition operator {self.operator} is not modelled")
        if any("${" in v for v in self.values):
            raise Unsupported(f"policy variables are not modelled: {self.values}")

    def holds(self, context: Context) -> bool:
        """Whether the condition holds for the request's keys (names already lower-cased)."""
        qualifier, _, base = self.operator.rpartition(":")
        if_exists = base.endswith("IfExists")
        base = base.removesuffix("IfExists")
        present = self.key.lower() in context
        found = context.get(self.key.lower(), ())
        if base == "Null":
            return (not present) is (self.values[0].lower() == "true")
        test, negated = _TESTS[base]
        if not present:
            return if_exists or qualifier == "ForAllValues" or (negated and qualifier == "")

        def hit(value: str) -> bool:
            matched = any(test(p, value) for p in self.values)
            return not matched if negated else matched

        if qualifier == "ForAllValues":
            return all(hit(v) for v in found)
        if qualifier == "" and negated:  # a negated single-valued test: no request value may match
            return all(hit(v) for v in found)
        return any(hit(v) for v in found)


def _conditions(block: Mapping[str, Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    return tuple(
        Condition(operator, key, _as_tuple(values))
        for operator, keys in (block or {}).items()
        for key, values in keys.items()
    )


@dataclass(frozen=True)
class PrincipalIdentity:
    """Who asks: a role's session, in its account."""

    role_arn: str
    account: str

    def context(self) -> dict[str, tuple[str, ...]]:
        return {
            "aws:principalarn": (self.role_arn,),
            "aws:principalaccount": (self.account,),
            "aws:principaltype": ("AssumedRole",),
        }


def _principal_grant(principal: Any, who: PrincipalIdentity) -> str | None:
    """How a resource policy's Principal names `who`: "principal", "account" (a delegation to the
    account's IAM policies), or None (someone else: another account, a service)."""
    if principal == "*":
        return "principal"
    aws = _as_tuple(principal.get("AWS")) if isinstance(principal, Mapping) else ()
    if "*" in aws or who.role_arn in aws:
        return "principal"
    if who.account in aws or f"arn:aws:iam::{who.account}:root" in aws:
        return "account"
    return None


@dataclass(frozen=True)
class Statement:
    source: str  # the policy holding it, and its Sid
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None  # None: no Resource element (a trust policy)
    not_resource: bool
    principal: Any  # a resource policy's Principal; None in identity policies
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], policy: str) -> Statement:
        if "NotPrincipal" in raw:
            raise Unsupported(f"{policy}: NotPrincipal is not modelled")
        for element in ("Action", "NotAction", "Resource", "NotResource"):
            if any("${" in v for v in _as_tuple(raw.get(element))):
                raise Unsupported(f"{policy}: policy variables are not modelled: {raw[element]}")
        if raw.get("Effect") not in ("Allow", "Deny"):
            raise Unsupported(f"{policy}: Effect must be Allow or Deny: {raw.get('Effect')!r}")
        has_resource = "Resource" in raw or "NotResource" in raw
        return cls(
            source=f"{policy}#{raw['Sid']}" if raw.get("Sid") else policy,
            effect=raw["Effect"],
            actions=_as_tuple(raw.get("Action", raw.get("NotAction"))),
            not_action="NotAction" in raw,
            resources=_as_tuple(raw.get("Resource", raw.get("NotResource"))) if has_resource else None,
            not_resource="NotResource" in raw,
            principal=raw.get("Principal"),
            conditions=_conditions(raw.get("Condition")),
        )

    def covers_action(self, action: str) -> bool:
        return any(action_matches(p, action) for p in self.actions) is not self.not_action

    def covers_resource(self, resource: str) -> bool:
        if self.resources is None:
            return True
        return any(arn_matches(p, resource) for p in self.resources) is not self.not_resource

    def conditions_hold(self, context: Context) -> bool:
        return all(c.holds(context) for c in self.conditions)


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]

    @classmethod
    def parse(cls, name: str, document: Mapping[str, Any]) -> Policy:
        raw = document.get("Statement", [])
        statements = [raw] if isinstance(raw, Mapping) else list(raw)
        return cls(name, tuple(Statement.parse(s, name) for s in statements))


class Outcome(StrEnum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


@dataclass(frozen=True)
class Decision:
    request: Request
    outcome: Outcome
    allowed_by: tuple[Statement, ...]
    denied_by: tuple[Statement, ...]
    # (statement, condition key) of the statements that applied to the request, by whether the request
    # carried the key: those it did not were judged by IAM's rule for a missing key.
    evaluated: frozenset[tuple[str, str]]
    unevaluated: frozenset[tuple[str, str]]

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED


def _normalized(context: Context) -> dict[str, tuple[str, ...]]:
    return {key.lower(): tuple(values) for key, values in context.items()}


def evaluate(
    request: Request,
    who: PrincipalIdentity,
    identity: Sequence[Policy],
    resource_policy: Policy | None = None,
    *,
    key_policy: bool = False,
) -> Decision:
    """Does `who`, holding `identity` policies, get `request`, with the resource's own policy (if any)?
    `key_policy`: the resource policy is a KMS key policy, which must allow (directly or by delegation)."""
    context = {**who.context(), **_normalized(request.context)}
    carried: set[tuple[str, str]] = set()
    missing: set[tuple[str, str]] = set()

    def applying(statements: Iterable[Statement], resource_side: bool) -> Iterator[tuple[Statement, str]]:
        for statement in statements:
            grant = _principal_grant(statement.principal, who) if resource_side else "identity"
            if grant is None or not statement.covers_action(request.action):
                continue
            if not statement.covers_resource(request.resource):
                continue
            for condition in statement.conditions:
                seen = carried if condition.key.lower() in context else missing
                seen.add((statement.source, condition.key))
            if statement.conditions_hold(context):
                yield statement, grant

    applied = [*applying((s for p in identity for s in p.statements), False)]
    if resource_policy is not None:
        applied += applying(resource_policy.statements, True)
    denies = tuple(s for s, _ in applied if s.effect == "Deny")
    allows = [(s, grant) for s, grant in applied if s.effect == "Allow"]
    by_identity = [s for s, grant in allows if grant == "identity"]
    by_name = [s for s, grant in allows if grant == "principal"]
    by_account = [s for s, grant in allows if grant == "account"]
    if key_policy:
        allowed_by = tuple(by_name or (by_account + by_identity if by_account and by_identity else []))
    else:
        allowed_by = tuple(by_identity + by_name)
    if denies:
        outcome = Outcome.EXPLICIT_DENY
    elif allowed_by:
        outcome = Outcome.ALLOWED
    else:
        outcome = Outcome.IMPLICIT_DENY
    return Decision(request, outcome, allowed_by, denies, frozenset(carried), frozenset(missing))
