"""Per role: the actions its policies grant, how many of the requests of every flow each one allowed,
and, for a grant no flow used, the template's comment that says which path uses it.

Runs the least-privilege tour (tests/iam/tour.py: every flow, each function, job and agent with its
own role, IAM enforced by moto and every request judged by batchplane_tools.iam) and prints what
tests/iam/test_least_privilege.py asserts. Exits 1 when any check finds something.

    python bench/iam_report.py
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from batchplane.observability import logger
    from batchplane_tools.iam import findings
    from tests.iam.harness import iam_stack
    from tests.iam.tour import Tour
    from tests.support import TEMPLATE

    with iam_stack() as iam:
        logger.setLevel("CRITICAL")  # the handlers' own logs (the tour's failures on purpose among them)
        tour = Tour(iam)
        # and their metrics (EMF lines on stdout), and the workers' step logs (stderr)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            tour.run()
        verdicts = findings.judge(
            iam.recorder, iam.roles, iam.encryption, findings.resource_policies(iam.stack)
        )
        comments = findings.template_comments(TEMPLATE.read_text(encoding="utf-8"))
        runs: dict[str, list[str]] = {}
        for who, role in iam.runs_as.items():
            runs.setdefault(role, []).append(who)
        roles = [iam.roles[r] for r in sorted(runs)]
        for role in roles:
            print(findings.report(role, verdicts, comments, runs[role.logical_id]), end="\n\n")
        problems = [f"flow failed: {flow}" for flow in tour.failures]
        problems += findings.refusals(iam.recorder, verdicts)
        for role in roles:
            problems += findings.unused_uncommented(role, verdicts, comments)
            problems += findings.kms_beyond_use(role, verdicts)
        problems += findings.unreasoned_conditions(roles, verdicts, comments)
        print(f"{len(roles)} roles, {len(iam.recorder.calls)} calls, {len(verdicts)} IAM requests judged")
        print("\n".join(problems) if problems else "no findings")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
