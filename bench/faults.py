"""Fault injection in full: every call of every flow (not only each call site's first, as CI runs),
faulted with every kind, a permanent outage included; or the one case a test reported.

    .venv/bin/python bench/faults.py --every-call        # the whole matrix (a few minutes)
    .venv/bin/python bench/faults.py --flow cancel --fault crash_after --call 1
                                                         # case cancel:crash_after:1, as reported

The harness is the tests' (tests/faults/, described in docs/architecture.md): a fault-free run of each
flow lists the AWS calls its trigger makes, then each call is faulted in a fresh run, redelivery runs
as AWS runs it until the world is quiet, and the invariants are checked. Prints flows x call sites x
fault kinds, and every failure with the case that reproduces it; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

import pytest  # noqa: E402

from batchplane.observability import logger  # noqa: E402
from tests.conftest import aws_stack, fake_credentials  # noqa: E402
from tests.faults.flows import FLOWS, flow_named  # noqa: E402
from tests.faults.injector import FaultKind  # noqa: E402
from tests.faults.matrix import harness_on, plan_of, render, run_flow, summary  # noqa: E402


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--flow", action="append", choices=[f.name for f in FLOWS], help="default: every flow"
    )
    parser.add_argument(
        "--fault", action="append", choices=[k.value for k in FaultKind], help="default: every kind"
    )
    parser.add_argument("--call", type=int, help="only the call at this position of the fault-free run")
    parser.add_argument("--every-call", action="store_true", help="every call, not each site's first")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    flows = [flow_named(name) for name in args.flow] if args.flow else FLOWS
    kinds = [FaultKind(kind) for kind in args.fault] if args.fault else list(FaultKind)
    started = time.perf_counter()
    rows = []
    # The functions' log lines and metrics (thousands of tracebacks of injected faults) stay out of the
    # report; progress goes to stderr.
    logging.getLogger(logger.name).handlers.clear()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(io.StringIO()):
        fake_credentials(monkeypatch)
        with aws_stack(monkeypatch) as aws, harness_on(aws) as harness:
            for flow in flows:
                report = run_flow(harness, flow, plan_of(kinds, every_call=args.every_call, only=args.call))
                rows.append(summary(report))
                print(
                    f"{flow.name}: {len(report.results)} cases, {len(report.failures)} failed",
                    file=sys.stderr,
                )
    print(render(rows, sites=True))
    print(f"{time.perf_counter() - started:.0f} s")
    return 1 if any(row["failures"] or row["baseline"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
