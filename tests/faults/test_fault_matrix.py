"""Crash anywhere, lose nothing: every AWS call of every flow, faulted in turn.

For each flow (tests/faults/flows.py) a fault-free run records the calls its trigger makes; then each
call site is faulted with each kind (the process dies before it, or after it succeeded; it is
throttled; it answers a 5xx; or its service stays down), redelivery runs as AWS runs it until the
world is quiet, and the invariants are checked (tests/faults/invariants.py). CI runs every call
site's first call with the transient kinds and, for permanent faults, each flow's first call;
`python bench/faults.py --every-call` runs every call with every kind.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults.flows import FLOWS, Flow
from tests.faults.injector import TRANSIENT, FaultKind
from tests.faults.matrix import REPORT_PROPERTY, Harness, cases_of, run_flow, summary


@pytest.mark.parametrize("flow", FLOWS, ids=[flow.name for flow in FLOWS])
def test_every_call_of_the_flow_survives_every_fault(
    harness: Harness, flow: Flow, record_property: Any
) -> None:
    # Given the flow's fault-free run, which lists the calls its trigger makes
    # When each call site is faulted with each transient kind, and then the first call stays down
    report = run_flow(
        harness,
        flow,
        lambda name, calls: (
            cases_of(name, calls, TRANSIENT) + cases_of(name, calls, [FaultKind.PERMANENT], only=0)
        ),
    )
    record_property(REPORT_PROPERTY, json.dumps(summary(report)))

    # Then the trigger made calls, the fault-free run broke nothing, and every fault left the world
    # as the fault-free run did (or, for a permanent one, kept in a DLQ with a line saying why)
    assert report.calls, f"{flow.name} made no AWS call"
    assert report.baseline_violations == []
    assert len(report.results) == 4 * len(report.sites) + 1
    assert {r.case.id: r.violations for r in report.failures} == {}
