"""Bad input for the stack fails at validation, with a clear message, not halfway through a deploy."""

from __future__ import annotations

import re
from typing import Any

import pytest

from batchplane_tools.local.template import load_template
from tests.support import TEMPLATE

STACK = load_template(TEMPLATE)


def evaluate(condition: Any, parameters: dict[str, Any]) -> Any:
    """The intrinsic functions CloudFormation allows in Rules, as far as these assertions use them."""
    if isinstance(condition, dict):
        ((name, arg),) = condition.items()
        if name == "Ref":
            return parameters[arg]
        if name == "Fn::Not":
            return not evaluate(arg[0], parameters)
        if name == "Fn::EachMemberEquals":
            values, wanted = evaluate(arg[0], parameters), evaluate(arg[1], parameters)
            return all(v == wanted for v in values)
        if name == "Fn::Equals":
            return evaluate(arg[0], parameters) == evaluate(arg[1], parameters)
        raise AssertionError(f"unexpected function {name} in a rule")
    return condition


def failed_rules(parameters: dict[str, Any]) -> list[str]:
    return [
        assertion["AssertDescription"]
        for rule in STACK["Rules"].values()
        for assertion in rule["Assertions"]
        if not evaluate(assertion["Assert"], parameters)
    ]


GOOD = {"SubnetIds": ["subnet-0abc"], "SecurityGroupIds": ["sg-0abc"]}


def test_a_deploy_with_subnets_and_security_groups_passes_the_rules() -> None:
    assert failed_rules(GOOD) == []


@pytest.mark.parametrize("empty", [[], [""]])
def test_an_empty_subnet_list_fails_at_validation_naming_the_parameter(empty: list[str]) -> None:
    assert failed_rules({**GOOD, "SubnetIds": empty}) == [
        "SubnetIds must name at least one subnet for the Batch compute environments"
    ]


def test_an_empty_security_group_list_fails_at_validation() -> None:
    [message] = failed_rules({**GOOD, "SecurityGroupIds": []})

    assert message.startswith("SecurityGroupIds must name at least one security group")


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("", True),
        ("oncall@example.com", True),
        ("ops+batch@corp.example.co.uk", True),
        ("not-an-email", False),
        ("a@b", False),
        ("two words@example.com", False),
        ("@example.com", False),
    ],
)
def test_alert_email_must_be_empty_or_an_address(address: str, accepted: bool) -> None:
    parameter = STACK["Parameters"]["AlertEmail"]

    assert bool(re.fullmatch(parameter["AllowedPattern"], address)) is accepted
    assert parameter["ConstraintDescription"] == "must be empty or an e-mail address"


def test_numeric_parameters_are_bounded() -> None:
    parameters = STACK["Parameters"]
    for name in ("MaxVcpusSpot", "MaxVcpusOnDemand", "SubmitRatePerSecond", "DispatcherConcurrency"):
        assert "MinValue" in parameters[name], name
    assert parameters["DispatcherConcurrency"]["MinValue"] >= 2  # SQS event source MaximumConcurrency >= 2
