"""Metrics: recorded one way, and not at all when they are off (the local stack), where nothing would
ever flush them."""

from __future__ import annotations

import pytest

from batchplane.observability import metric, metrics


def test_with_metrics_off_a_metric_is_neither_kept_nor_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics switched off, as the local stack runs the functions
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.clear_metrics()

    # When a function records more of one metric than Powertools holds before it prints a batch
    for _ in range(150):
        metric("AttemptsSubmittedSpot")
    metric("Retries", failure_class="SPOT_INTERRUPTED", job_type="sort-large")

    # Then nothing piles up in the process's one Metrics object, and nothing is printed
    assert metrics.metric_set == {}
    assert capsys.readouterr().out == ""


def test_with_metrics_on_a_metric_joins_the_invocations_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()

    metric("AttemptsSubmittedSpot")
    metric("AttemptsSubmittedSpot")

    assert metrics.metric_set["AttemptsSubmittedSpot"]["Value"] == [1.0, 1.0]
    metrics.clear_metrics()
