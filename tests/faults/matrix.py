"""The matrix: for each flow, a fault-free run records the calls its trigger makes; then, for each
call site (or each call) and each fault kind, a fresh run faults that call, lets redelivery happen
until the world is quiet, and checks the invariants against the fault-free run's books.

Nothing here names a call site: they come from the fault-free run, so a new one is faulted without
editing the harness.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import AwsStack
from tests.faults.flows import Flow
from tests.faults.injector import Call, FaultKind, Injector
from tests.faults.invariants import Books, check, observe
from tests.faults.world import World

PERMANENT_SETTLE_ROUNDS = 2
REPORT_PROPERTY = "fault_matrix"  # the user property a test's summary row travels in


@dataclass(frozen=True)
class Case:
    flow: str
    kind: FaultKind
    index: int  # the call's position among the trigger's calls in the fault-free run
    call: Call
    nth: int  # the how-many-th call at its site

    @property
    def id(self) -> str:
        """What reproduces it: `bench/faults.py --flow F --fault K --call I`."""
        return f"{self.flow}:{self.kind.value}:{self.index}"

    def describe(self) -> str:
        again = f"bench/faults.py --flow {self.flow} --fault {self.kind.value} --call {self.index}"
        return f"{self.id} ({self.call.where}{f' #{self.nth + 1}' if self.nth else ''}): {again}"


@dataclass
class Result:
    case: Case
    violations: list[str]
    sweeps: int  # sweeps that changed something before the world was quiet


@dataclass
class FlowReport:
    flow: Flow
    calls: list[Call]
    baseline_violations: list[str]
    baseline_sweeps: int
    results: list[Result] = field(default_factory=list)

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.violations]

    @property
    def sites(self) -> list[str]:
        return list(dict.fromkeys(call.where for call in self.calls))


@dataclass
class Harness:
    """One stack, one injector, one world: each run starts from an empty table and empty queues."""

    aws: AwsStack
    injector: Injector = field(default_factory=Injector)
    runs: int = 0

    def __post_init__(self) -> None:
        self.injector.install()
        self.world = World(self.aws)

    def close(self) -> None:
        self.world.close()
        self.injector.uninstall()

    def _fresh(self, flow: Flow) -> tuple[str, Any]:
        self.runs += 1
        tag = f"{flow.name.replace('_', '-')}-{self.runs}"
        self.world.reset()
        return tag, flow.setup(self.world, tag)

    def baseline(self, flow: Flow) -> tuple[list[Call], Books, list[str], int]:
        """The fault-free run: the trigger's calls, the books it leaves, what it already breaks, and
        the sweeps that changed something."""
        tag, context = self._fresh(flow)
        with self.injector.recording() as calls:
            flow.act(self.world, context)
        settled = self.world.settle()
        observed = observe(self.world, tag)
        violations = check(self.world, observed, observed.books, permanent=False, settled=settled)
        return calls, observed.books, violations, settled.sweeps_that_worked

    def run(self, flow: Flow, case: Case, expected: Books) -> Result:
        tag, context = self._fresh(flow)
        with self.injector.fault(case.kind, case.call, case.nth) as armed:
            flow.act(self.world, context)
            if case.kind.transient:
                armed.done()
            settled = self.world.settle(*(() if case.kind.transient else (PERMANENT_SETTLE_ROUNDS,)))
        observed = observe(self.world, tag)
        violations = check(self.world, observed, expected, permanent=not case.kind.transient, settled=settled)
        if armed.fired is None:
            violations.insert(0, f"never reached: {case.call.where} was called {armed.seen} times here")
        return Result(case, violations, settled.sweeps_that_worked)


def cases_of(
    flow: str,
    calls: list[Call],
    kinds: Iterable[FaultKind],
    *,
    every_call: bool = False,
    only: int | None = None,
) -> list[Case]:
    """Each call site's first call (or every call; or only the call at `only`), with each kind."""
    found: list[Case] = []
    seen: dict[str, int] = {}
    for index, call in enumerate(calls):
        nth = seen.get(call.where, 0)
        seen[call.where] = nth + 1
        if (only is None and nth and not every_call) or only not in (None, index):
            continue
        found += [Case(flow, kind, index, call, nth) for kind in kinds]
    return found


Plan = Callable[[str, list[Call]], list[Case]]


def plan_of(kinds: Iterable[FaultKind], *, every_call: bool = False, only: int | None = None) -> Plan:
    chosen = list(kinds)
    return lambda flow, calls: cases_of(flow, calls, chosen, every_call=every_call, only=only)


def run_flow(harness: Harness, flow: Flow, plan: Plan) -> FlowReport:
    """The fault-free run, then a run for each case the plan makes of its calls."""
    calls, expected, violations, sweeps = harness.baseline(flow)
    report = FlowReport(flow, calls, violations, sweeps)
    for case in plan(flow.name, calls):
        report.results.append(harness.run(flow, case, expected))
    return report


@contextmanager
def harness_on(aws: AwsStack) -> Iterator[Harness]:
    harness = Harness(aws)
    try:
        yield harness
    finally:
        harness.close()


def summary(report: FlowReport) -> dict[str, Any]:
    """A flow's row of the report, as plain data (pytest-xdist carries it to the controller)."""
    later = [
        r
        for r in report.results
        if r.sweeps > report.baseline_sweeps and not r.violations and not report.flow.scheduled
    ]
    return {
        "flow": report.flow.name,
        "what": report.flow.what,
        "calls": len(report.calls),
        "sites": report.sites,
        "kinds": sorted({r.case.kind.value for r in report.results}),
        "cases": len(report.results),
        "later_sweep": [r.case.id for r in later],
        "baseline": report.baseline_violations,
        "failures": [{"case": r.case.describe(), "violations": r.violations} for r in report.failures],
    }


def report_of(properties: Iterable[tuple[str, object]]) -> list[dict[str, Any]]:
    """The summary rows among a test report's user properties."""
    return [json.loads(str(value)) for name, value in properties if name == REPORT_PROPERTY]


def render(summaries: list[dict[str, Any]], *, sites: bool = False) -> str:
    """flows x call sites x fault kinds tried, and every failure with the case that reproduces it
    (`python bench/faults.py --flow F --fault K --call I` for case F:K:I)."""
    lines = ["fault injection: flows x call sites x fault kinds"]
    for row in summaries:
        sized = f"{row['calls']} calls at {len(row['sites'])} sites x {len(row['kinds'])} kinds"
        lines.append(
            f"  {row['flow']} ({row['what']}): {sized} = {row['cases']} cases, {len(row['failures'])} failed"
            + (f", {len(row['later_sweep'])} completed only by a later sweep" if row["later_sweep"] else "")
        )
        lines += [f"    {site}" for site in row["sites"] if sites]
        lines += [f"    fault-free run: {v}" for v in row["baseline"]]
        for failure in row["failures"]:
            lines.append(f"    FAILED {failure['case']}")
            lines += [f"      {v}" for v in failure["violations"]]
    places = sum(len(row["sites"]) for row in summaries)
    cases = sum(row["cases"] for row in summaries)
    failed = sum(len(row["failures"]) for row in summaries)
    lines.append(f"  {len(summaries)} flows, {places} call sites, {cases} cases, {failed} failed")
    return "\n".join(lines)
