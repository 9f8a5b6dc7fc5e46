"""The policy document loads whole or fails loudly with the path of the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from batchplane.errors import PolicyError
from batchplane.models.job import FailureClass
from batchplane.models.policy import CapacityPreference
from batchplane.policy.document import load_policy, load_policy_text, parse_policy

EXAMPLE = Path(__file__).parents[2] / "layers" / "core" / "policy.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_example_policy_has_a_short_a_memory_hungry_and_a_spot_friendly_job_type() -> None:
    policy = load_policy(EXAMPLE)

    assert policy.job_types["word-count"].capacity is CapacityPreference.ON_DEMAND_ONLY
    assert policy.job_types["sort-large"].rule(FailureClass.OUT_OF_MEMORY).memory_factor == 2.0
    spot = policy.job_types["checksum-manifest"].rule(FailureClass.SPOT_INTERRUPTED)
    assert spot.fallback_to_on_demand_after == 2
    assert spot.backoff is False


def test_a_class_the_policy_does_not_name_is_not_retried() -> None:
    policy = load_policy(EXAMPLE)

    assert policy.job_types["word-count"].rule(FailureClass.OUT_OF_MEMORY).max_retries == 0


@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (
            lambda d: d["job_types"]["word-count"]["resources"]["vcpus"].update(max="many"),
            "job_types.word-count.resources.vcpus.max",
            "integer",
        ),
        (
            lambda d: d["job_types"]["word-count"]["resources"]["memory_mib"].update(default=4096),
            "job_types.word-count.resources.memory_mib",
            "above max",
        ),
        (
            lambda d: d["job_types"]["sort-large"]["retry"].update(CANCELLED={"max_retries": 1}),
            "job_types.sort-large.retry",
            "never retried",
        ),
        (
            lambda d: d["job_types"]["sort-large"]["retry"].update(INPUT_CHANGED={"max_retries": 1}),
            "job_types.sort-large.retry",
            "a changed input is never retried",
        ),
        (
            lambda d: d["job_types"]["sort-large"]["retry"].update(BURNT_TOAST={"max_retries": 1}),
            "job_types.sort-large.retry.BURNT_TOAST",
            "Input should be",
        ),
        (
            lambda d: d["job_types"]["word-count"]["parameters"]["input"].update(pattern="(unclosed"),
            "job_types.word-count.parameters.input.pattern",
            "regular expression",
        ),
        (
            lambda d: d["job_types"]["word-count"].update(colour="blue"),
            "job_types.word-count.colour",
            "Extra inputs",
        ),
        (lambda d: d["file_drop"][0].update(job_type="nope"), "file_drop", "not a job type"),
        (lambda d: d.update(version=2), "version", "less than or equal"),
    ],
)
def test_bad_policy_fails_with_the_path_of_the_bad_field(mutate, path: str, reason: str) -> None:
    # Given the example policy with one field broken
    data = example()
    mutate(data)

    # When it is loaded, Then it fails naming that field and why
    with pytest.raises(PolicyError) as failure:
        parse_policy(data)
    assert any(d.field.startswith(path) and reason in d.reason for d in failure.value.details), (
        failure.value.details
    )
    assert path in str(failure.value)


def test_policy_that_is_not_yaml_fails_loudly() -> None:
    # Given a policy whose second line is cut short
    text = "version: 1\njob_types: [unclosed\n"

    # When it is loaded, Then the error names the file and quotes the line where reading stopped
    with pytest.raises(PolicyError, match="not valid YAML") as failure:
        load_policy_text(text, "bad.yaml")
    assert "bad.yaml" in str(failure.value)
    assert "job_types: [unclosed" in str(failure.value)


def test_example_policy_reads_the_same_with_libyaml_as_with_pyyaml() -> None:
    # Given the example policy, read by PyYAML's own loader
    expected = example()

    # When batchplane loads it (the layer's PyYAML wheel has libyaml, whose loader it uses)
    assert yaml.__with_libyaml__
    policy = load_policy_text(EXAMPLE.read_text(), str(EXAMPLE))

    # Then it is the same document
    assert policy == parse_policy(expected)


def test_a_tab_used_as_spacing_is_refused_as_pyyaml_refuses_it() -> None:
    # Given a policy with a tab before a comment, which libyaml would accept and PyYAML does not
    text = EXAMPLE.read_text().replace("version: 1", "version: 1\t# the only version", 1)

    # When it is loaded, Then it fails as before libyaml was used, naming the place
    with pytest.raises(PolicyError, match="not valid YAML") as failure:
        load_policy_text(text, "tabbed.yaml")
    assert "line 4, column 11" in str(failure.value)


def test_missing_policy_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy"):
        load_policy(tmp_path / "absent.yaml")
