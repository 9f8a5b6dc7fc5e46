"""What the recorded calls say about the template's roles: each request judged by the evaluator (with
the resource's own policy, and the KMS requests encryption at rest adds), the actions each role is
granted against those it used, its KMS grants against the keys it touched, and the condition keys
no request carried. Each check returns its findings as sentences naming role, action, resource and
flow; none is a pass."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from batchplane_tools.iam.encryption import EncryptionAtRest
from batchplane_tools.iam.evaluator import Decision, Policy, Request, Statement, action_matches, evaluate
from batchplane_tools.iam.recorder import Recorded, Recorder
from batchplane_tools.iam.roles import Role
from batchplane_tools.local.template import Stack


@dataclass(frozen=True)
class Verdict:
    call: Recorded
    request: Request
    decision: Decision
    implied_by: Request | None = None  # the call's request that made this KMS request


def resource_policies(stack: Stack) -> list[tuple[str, Policy]]:
    """The template's bucket, queue and topic policies, by the ARN of the resource each governs."""
    found: list[tuple[str, Policy]] = []
    for logical, props in stack.resources("AWS::S3::BucketPolicy"):
        bucket = f"arn:aws:s3:::{stack.resolve(props['Bucket'])}"
        found.append(
            (bucket, Policy.parse(f"{logical}/bucket policy", stack.resolve(props["PolicyDocument"])))
        )
    for kind, key in (("AWS::SQS::QueuePolicy", "Queues"), ("AWS::SNS::TopicPolicy", "Topics")):
        for logical, props in stack.resources(kind):
            policy = Policy.parse(f"{logical}/resource policy", stack.resolve(props["PolicyDocument"]))
            for given in stack.resolve(props[key]):
                arn = given if given.startswith("arn:") else _queue_arn(given)
                found.append((arn, policy))
    return found


def _queue_arn(url: str) -> str:
    region = url.split("//", 1)[1].split(".")[1]
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def _policy_for(resource: str, policies: list[tuple[str, Policy]]) -> Policy | None:
    return next((p for arn, p in policies if resource == arn or resource.startswith(f"{arn}/")), None)


def judge(
    recorder: Recorder,
    roles: Mapping[str, Role],
    encryption: EncryptionAtRest,
    policies: list[tuple[str, Policy]],
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for call in recorder.calls:
        role = roles[call.role]
        for request in call.requests:
            decision = evaluate(
                request, role.identity, role.policies, _policy_for(request.resource, policies)
            )
            verdicts.append(Verdict(call, request, decision))
            for kms in encryption.implied(request):
                key_policy = encryption.key_policies.get(kms.resource)
                decision = evaluate(
                    kms, role.identity, role.policies, key_policy, key_policy=key_policy is not None
                )
                verdicts.append(Verdict(call, kms, decision, request))
    return verdicts


def _where(verdict: Verdict) -> str:
    call = verdict.call
    via = f" (for {verdict.implied_by.describe()})" if verdict.implied_by else ""
    return f"{call.role} via {call.origin}, {call.operation}{via}, in flow {call.flow!r}"


def refusals(recorder: Recorder, verdicts: Iterable[Verdict]) -> list[str]:
    """Every request a role's policies do not allow, every call moto refused, every call not described."""
    found = [f"{c.role} via {c.origin}: {c.unmapped}" for c in recorder.calls if c.unmapped]
    found += [
        f"{c.role} via {c.origin}, {c.operation}, in flow {c.flow!r}: refused by moto's IAM"
        for c in recorder.calls
        if c.denied_by_moto
    ]
    found += [
        f"{v.request.describe()}: {v.decision.outcome.value}"
        + (f" by {', '.join(s.source for s in v.decision.denied_by)}" if v.decision.denied_by else "")
        + f" - {_where(v)}"
        for v in verdicts
        if not v.decision.allowed
    ]
    return found


@dataclass(frozen=True)
class Grant:
    statement: Statement
    action: str  # as written in the statement (a pattern)

    @property
    def resources(self) -> str:
        return ", ".join(self.statement.resources or ("(any)",))


def grants(role: Role) -> list[Grant]:
    return [
        Grant(statement, action)
        for policy in role.policies
        for statement in policy.statements
        if statement.effect == "Allow" and not statement.not_action
        for action in statement.actions
    ]


def uses(role: Role, verdicts: Iterable[Verdict]) -> Counter[Grant]:
    """How many of the role's requests each of its grants allowed."""
    counted: Counter[Grant] = Counter()
    own = [v for v in verdicts if v.call.role == role.logical_id and v.decision.allowed]
    for grant in grants(role):
        counted[grant] = sum(
            1
            for v in own
            if grant.statement in v.decision.allowed_by and action_matches(grant.action, v.request.action)
        )
    return counted


def template_comments(text: str) -> dict[str, str]:
    """The comments of each resource of template.yaml: those in its block and those just above it."""
    lines = text.splitlines()
    comments: dict[str, str] = {}
    starts = [i for i, line in enumerate(lines) if re.match(r"^  [A-Za-z0-9]+:\s*$", line)]
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        above = start
        while above > 0 and lines[above - 1].strip().startswith("#"):
            above -= 1
        block = lines[above:end]
        found = [line.split("#", 1)[1] for line in block if line.strip().startswith("#") or " # " in line]
        comments[lines[start].strip().rstrip(":")] = "\n".join(found)
    return comments


def unused_uncommented(role: Role, verdicts: Iterable[Verdict], comments: Mapping[str, str]) -> list[str]:
    """Grants no recorded request used whose action the role's comments do not name."""
    said = comments.get(role.logical_id, "").lower()
    return [
        f"{role.logical_id} grants {g.action} on {g.resources} ({g.statement.source}): no flow used it "
        f"and no comment on {role.logical_id} says which path does"
        for g, count in uses(role, verdicts).items()
        if count == 0 and g.action.lower() not in said
    ]


def kms_beyond_use(role: Role, verdicts: Iterable[Verdict]) -> list[str]:
    """KMS grants no KMS request of the role used: a key it does not touch, or an action it does not need."""
    return [
        f"{role.logical_id} grants {g.action} on {g.resources} ({g.statement.source}), "
        "but touches nothing encrypted with it that needs that action"
        for g, count in uses(role, verdicts).items()
        if g.action.lower().startswith("kms:") and count == 0
    ]


def unreasoned_conditions(
    roles: Iterable[Role], verdicts: Iterable[Verdict], comments: Mapping[str, str]
) -> list[str]:
    """Condition keys no request carried (trust policies' among them: no request here assumes a role)
    and the template does not reason about in a comment on the resource that holds them."""
    evaluated: set[tuple[str, str]] = set()
    lacking: set[tuple[str, str]] = set()
    for verdict in verdicts:
        evaluated |= verdict.decision.evaluated
        lacking |= verdict.decision.unevaluated
    for role in roles:
        trust = Policy.parse(f"{role.logical_id}/trust policy", role.trust)
        lacking |= {(s.source, c.key) for s in trust.statements for c in s.conditions}
    found = []
    for source, key in sorted(lacking - evaluated):
        holder = source.split("/", 1)[0]
        if key.lower() not in comments.get(holder, "").lower():
            found.append(
                f"{source}: condition on {key}, which no request here carries, has no comment on {holder}"
            )
    return found


def report(role: Role, verdicts: list[Verdict], comments: Mapping[str, str], runs: Iterable[str]) -> str:
    """A role's grants, each with the requests it allowed, or the template's comment that says which
    path uses it."""
    lines = [f"{role.logical_id} (run by {', '.join(runs)})"]
    said = comments.get(role.logical_id, "").splitlines()
    for grant, count in uses(role, verdicts).items():
        used = f"{count} request(s)" if count else "not used here"
        lines.append(f"  {grant.action:<34} {used:<16} on {grant.resources}")
        if not count:
            why = [c.strip() for c in said if grant.action.lower() in c.lower()]
            lines.append(f"    template: {why[0] if why else 'NO COMMENT'}")
    origins = Counter(v.call.origin for v in verdicts if v.call.role == role.logical_id)
    lines.append("  requests by origin: " + ", ".join(f"{o} {n}" for o, n in sorted(origins.items())))
    return "\n".join(lines)
