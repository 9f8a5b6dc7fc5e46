"""The functions' environment on `batchplane local`: the template's variables, local endpoints, and the
few settings one shared process needs; and what of it the state file keeps for `invoke`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.local.environment import (
    apply_environment,
    function_environment,
    recorded_environment,
)
from batchplane_tools.local.template import Stack


def stack_with(variables: dict[str, Any]) -> Stack:
    template = {"Globals": {"Function": {"Environment": {"Variables": variables}}}, "Resources": {}}
    return Stack(name="s", template=template)


def environment_of(stack: Stack, inherited: dict[str, str] | None = None) -> dict[str, str]:
    return function_environment(
        stack,
        policy=Path("/p.yaml"),
        aws_url="http://aws",
        batch_url="http://batch",
        inherited=inherited or {},
    )


def test_local_settings_override_the_templates_and_endpoints_are_the_local_ones() -> None:
    # Given a template with its own policy path, submit rate and metrics switch
    stack = stack_with(
        {
            "TABLE": "t",
            "POLICY_PATH": "/opt/x",
            "SUBMIT_RATE_PER_SECOND": "5",
            "POWERTOOLS_METRICS_DISABLED": "false",
        }
    )

    # When the local environment is computed
    environment = environment_of(stack)

    # Then the template's own variables stand, and the local settings replace its others
    assert environment["TABLE"] == "t"
    assert environment["POLICY_PATH"] == "/p.yaml"
    assert environment["SUBMIT_RATE_PER_SECOND"] == "50"
    assert environment["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert environment["AWS_ENDPOINT_URL"] == "http://aws"
    assert environment["AWS_ENDPOINT_URL_BATCH"] == "http://batch"
    assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_DEFAULT_REGION"]) == ("local", "us-east-1")


@pytest.mark.parametrize(
    ("template_level", "operator_level", "expected"),
    [("INFO", "DEBUG", "INFO"), (None, "DEBUG", "DEBUG"), (None, None, "WARNING")],
)
def test_log_level_is_the_templates_else_the_operators_else_warning(
    template_level: str | None, operator_level: str | None, expected: str
) -> None:
    stack = stack_with({"POWERTOOLS_LOG_LEVEL": template_level} if template_level else {})
    inherited = {"POWERTOOLS_LOG_LEVEL": operator_level} if operator_level else {}

    assert environment_of(stack, inherited)["POWERTOOLS_LOG_LEVEL"] == expected


def test_state_file_keeps_the_templates_variables_then_aws_and_batch_access() -> None:
    # Given a template that does not set the metrics switch
    stack = stack_with({"TABLE": "t", "POLICY_PATH": "/opt/x"})

    # When the environment is recorded for the state file
    recorded = recorded_environment(environment_of(stack), stack)

    # Then it holds the template's names with their local values, then the access, in that order
    assert recorded == {
        "TABLE": "t",
        "POLICY_PATH": "/p.yaml",
        "AWS_ENDPOINT_URL": "http://aws",
        "AWS_ENDPOINT_URL_BATCH": "http://batch",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert list(recorded) == [
        "TABLE",
        "POLICY_PATH",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BATCH",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    ]


def test_apply_writes_the_environment_to_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHPLANE_TEST_SETTING", "before")  # restored after the test

    apply_environment({"BATCHPLANE_TEST_SETTING": "after"})

    assert os.environ["BATCHPLANE_TEST_SETTING"] == "after"
