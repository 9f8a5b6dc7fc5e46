"""`batchplane replay --policy candidate.yaml [--since DATE] [--tenant T] [--format json]`.

Exit status, for a CI gate on a policy change: 0 the candidate decides every recorded job as
recorded; 1 it decides some differently (printed); 2 the candidate does not validate (each bad field
printed with its path) or the table cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from batchplane.errors import PolicyError
from batchplane.policy.cost import DEFAULT_REGION, pricing_for
from batchplane.policy.document import load_policy_text
from batchplane_tools.cli.errors import CliError
from batchplane_tools.cli.render import table
from batchplane_tools.cli.targets import load_local, local_file_of, resolve_table
from batchplane_tools.replay.compare import JobReplay, by_job_type, replay_all
from batchplane_tools.replay.history import History, read_history

SAME, DIFFERS, INVALID = 0, 1, 2


def run_replay(args: argparse.Namespace) -> int:
    try:
        candidate = load_policy_text(args.policy.read_text(encoding="utf-8"), str(args.policy))
        pricing = pricing_for(candidate, args.region or DEFAULT_REGION)
    except OSError as error:
        print(f"batchplane: cannot read {args.policy}: {error.strerror}", file=sys.stderr)
        return INVALID
    except PolicyError as invalid:
        print(f"batchplane: the candidate policy {args.policy} does not validate:", file=sys.stderr)
        for detail in invalid.details or []:
            print(f"  {detail.field}: {detail.reason}", file=sys.stderr)
        if not invalid.details:
            print(f"  {invalid.message}", file=sys.stderr)
        return INVALID
    try:
        client, table_name, _ = resolve_table(args)
    except CliError as error:
        print(f"batchplane: {error}", file=sys.stderr)
        return INVALID
    ingest: str = args.ingest_bucket or (
        "" if args.table else load_local(local_file_of(args)).ingest_bucket or ""
    )
    history = read_history(client, table_name, since=args.since, tenant=args.tenant)
    replays = replay_all(candidate, pricing, history.jobs, ingest_bucket=ingest, seed=args.seed)
    report = _report(replays, history, str(args.policy))
    print(json.dumps(report, indent=2) if args.format == "json" else _text(report, replays))
    return DIFFERS if report["differing"] else SAME


def _report(replays: list[JobReplay], history: History, policy: str) -> dict[str, Any]:
    return {
        "candidate": policy,
        "jobs": len(replays),
        "differing": sum(r.divergence is not None for r in replays),
        "skipped_earlier_layout": history.earlier_layout,
        "by_job_type": {
            name: {
                "jobs": totals.jobs,
                "differing": totals.differing,
                **{label: {"recorded": rec, "candidate": cand} for label, rec, cand in totals.rows()},
            }
            for name, totals in by_job_type(replays).items()
        },
        "divergences": [r.as_dict() for r in replays if r.divergence is not None],
    }


def _text(report: dict[str, Any], replays: list[JobReplay]) -> str:
    lines = [f"replayed {report['jobs']} job(s) against {report['candidate']}: {report['differing']} differ"]
    if report["skipped_earlier_layout"]:
        lines.append(
            f"skipped {report['skipped_earlier_layout']} job(s) of the earlier layout (batchplane migrate)"
        )
    for name, totals in by_job_type(replays).items():
        lines += ["", f"{name} ({totals.jobs} jobs, {totals.differing} differ)"]
        lines.append(table(("", "RECORDED", "CANDIDATE"), totals.rows(), "  "))
    differing = [r for r in replays if r.divergence is not None]
    if differing:
        lines += ["", "first divergence per job"]
        lines.append(
            table(
                ("JOB ID", "TYPE", "TENANT", "DIVERGENCE"),
                [(r.job_id, r.job_type, r.tenant, r.divergence) for r in differing],
                "  ",
            )
        )
    return "\n".join(lines)
