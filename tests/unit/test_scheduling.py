"""The policy's `scheduling` section: validated at load, each tenant placed in a share with a weight and a
priority range, and template.yaml's SchedulingPolicy rendered from it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchplane.errors import PolicyError
from batchplane.models.s3_event import DroppedObject
from batchplane.models.scheduling import Scheduling, tenant_share
from batchplane.policy.admission import admit
from batchplane.policy.document import load_policy, parse_policy
from batchplane.policy.file_drop import first_match, request_for
from batchplane.policy.inputs import StackBuckets
from batchplane_tools.local.template import load_template
from batchplane_tools.scheduling_template import BEGIN, END, main, rendered
from tests.support import POLICY_PATH, TEMPLATE

POLICY_DATA = yaml.safe_load(POLICY_PATH.read_text())
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def policy_with(scheduling: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**POLICY_DATA, "scheduling": scheduling, **extra}


def refusal(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as refused:
        parse_policy(data)
    return [(d.field, d.reason) for d in refused.value.details]


def test_a_tenant_the_policy_does_not_name_gets_its_own_share_and_the_default_range() -> None:
    # Given the shipped policy (no tenant named)
    scheduling = load_policy(POLICY_PATH).scheduling

    # When a tenant is placed
    placement = scheduling.placement("analytics")

    # Then it is a share of its own, weighing what Batch gives an unlisted share
    assert placement.share == "analytics"
    assert placement.weight == 1.0
    assert (placement.priority.min, placement.priority.max, placement.priority.default) == (0, 100, 50)


def test_a_named_tenant_gets_its_share_weight_and_range_and_leaves_the_rest_to_the_default() -> None:
    scheduling = Scheduling.model_validate(
        {
            "default": {"share": "others", "weight": 2.0, "priority": {"min": 0, "max": 10, "default": 5}},
            "tenants": {
                "analytics": {"weight": 0.5, "priority": {"min": 0, "max": 500, "default": 100}},
                "nightly-loader": {"share": "bulk", "weight": 4},
            },
        }
    )

    analytics = scheduling.placement("analytics")
    loader = scheduling.placement("nightly-loader")
    stranger = scheduling.placement("marketing")

    assert (analytics.share, analytics.weight, analytics.priority.max) == ("analytics", 0.5, 500)
    assert (loader.share, loader.weight, loader.priority.max) == ("bulk", 4.0, 10)
    assert (stranger.share, stranger.weight) == ("others", 2.0)
    assert scheduling.share_distribution() == [("analytics", 0.5), ("bulk", 4.0), ("others", 2.0)]


def test_tenant_names_that_are_no_share_identifier_get_distinct_alphanumeric_shares() -> None:
    shares = {tenant_share(t) for t in ("a-b", "ab", "a.b", "a_b")}

    assert len(shares) == 4
    assert all(s.isalnum() and len(s) <= 255 for s in shares)
    assert tenant_share("ab") == "ab"


@pytest.mark.parametrize(
    ("scheduling", "field", "reason"),
    [
        (
            {"tenants": {"analytics": {"share": "ana-lytics"}}},
            "scheduling.tenants.analytics",
            "share identifier",
        ),
        (
            {"tenants": {"analytics": {"weight": 0}}},
            "scheduling.tenants.analytics.weight",
            "greater than or equal",
        ),
        (
            {"tenants": {"analytics": {"weight": 1000}}},
            "scheduling.tenants.analytics.weight",
            "less than or equal",
        ),
        (
            {"tenants": {"analytics": {"priority": {"min": 10, "max": 5, "default": 7}}}},
            "scheduling.tenants.analytics.priority",
            "min <= default <= max",
        ),
        ({"default": {"priority": {"default": 10000}}}, "scheduling.default.priority.default", "less than"),
        ({"default": {"weight": 0.5}}, "scheduling.default", "weight must be 1.0"),
        ({"default": {"share": "all*"}}, "scheduling.default", "share identifier"),
        ({"share_decay_seconds": 604_801}, "scheduling.share_decay_seconds", "less than or equal"),
        ({"compute_reservation": 100}, "scheduling.compute_reservation", "less than or equal"),
        ({"tenants": {"bad/name": {}}}, "scheduling.tenants", "not a tenant name"),
        (
            {"tenants": {"a": {"share": "pool", "weight": 1}, "b": {"share": "pool", "weight": 2}}},
            "scheduling",
            "a share has one weight",
        ),
    ],
)
def test_a_bad_scheduling_section_does_not_load_naming_the_field(
    scheduling: dict[str, Any], field: str, reason: str
) -> None:
    problems = refusal(policy_with(scheduling))

    assert any(f == field and reason in r for f, r in problems), problems


def test_a_file_drop_priority_outside_a_served_tenants_range_does_not_load() -> None:
    # Given a {tenant} rule asking for 80, and a tenant allowed 0..10
    rules = [{**POLICY_DATA["file_drop"][0], "priority": 80}]
    data = policy_with(
        {"tenants": {"analytics": {"priority": {"min": 0, "max": 10, "default": 5}}}}, file_drop=rules
    )

    # Then the policy names the rule and the tenant whose range it leaves
    assert refusal(data) == [("file_drop.0.priority", "80 is outside 0..10, the range of tenant analytics")]


def test_a_file_drop_rules_priority_reaches_the_job() -> None:
    # Given a rule whose drops run at priority 80, within the default range 0..100
    rules = [{**POLICY_DATA["file_drop"][0], "priority": 80}]
    policy = parse_policy(policy_with({}, file_drop=rules))
    dropped = DroppedObject(bucket="ingest", key="incoming/analytics/word-count/notes.txt", size=10, etag="e")

    # When a file is dropped under it
    match = first_match(policy, dropped.key)
    assert match is not None
    job = admit(
        policy, request_for(match, dropped), job_id="j", now=NOW, buckets=StackBuckets("ingest", "out")
    )

    # Then the job runs under its tenant's share at the rule's priority
    assert (job.share, job.priority) == ("analytics", 80)


def test_template_scheduling_policy_is_the_policy_documents() -> None:
    # What the shipped policy renders is in the template
    # (else: python -m batchplane_tools.scheduling_template --write)
    assert main([]) == 0


def test_rendering_writes_the_weights_between_the_markers_and_nothing_else(tmp_path: Path) -> None:
    template = TEMPLATE.read_text()
    scheduling = Scheduling.model_validate(
        {"share_decay_seconds": 7200, "tenants": {"analytics": {"weight": 0.25}, "bulk": {"weight": 4}}}
    )

    text = rendered(template, scheduling)

    block = text[text.index(BEGIN) : text.index(END)]
    assert "ShareDecaySeconds: 7200" in block
    assert "- {ShareIdentifier: analytics, WeightFactor: 0.25}" in block
    assert "- {ShareIdentifier: bulk, WeightFactor: 4.0}" in block
    assert text[: text.index(BEGIN)] == template[: template.index(BEGIN)]
    assert text[text.index(END) :] == template[template.index(END) :]
    (tmp_path / "template.yaml").write_text(text)
    distribution = load_template(tmp_path / "template.yaml")["Resources"]["SchedulingPolicy"]["Properties"][
        "FairsharePolicy"
    ]["ShareDistribution"]
    assert distribution == [
        {"ShareIdentifier": "analytics", "WeightFactor": 0.25},
        {"ShareIdentifier": "bulk", "WeightFactor": 4.0},
    ]
