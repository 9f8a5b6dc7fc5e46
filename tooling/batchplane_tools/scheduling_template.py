"""The template's fair-share policy, rendered from the policy document's `scheduling` section.

Batch holds the weights in the job queues' SchedulingPolicy (a stack resource); batchplane holds
them in policy.yaml (shipped in the layer), which also gives each tenant its share and priority
range. The template keeps a rendered copy between two marker comments, so a deploy carries the
policy's weights; a test fails while the copy differs from the document.

    python -m batchplane_tools.scheduling_template            # exit 1 and say so when template.yaml is stale
    python -m batchplane_tools.scheduling_template --write    # render it
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batchplane.models.scheduling import Scheduling
from batchplane.policy.document import load_policy
from batchplane_tools.paths import DEFAULT_POLICY, TEMPLATE

BEGIN = "# rendered from policy.yaml `scheduling`: begin"
END = "# rendered from policy.yaml `scheduling`: end"


def fairshare_lines(scheduling: Scheduling, indent: str) -> list[str]:
    """FairsharePolicy's properties as template lines."""
    lines = [
        f"ShareDecaySeconds: {scheduling.share_decay_seconds}",
        f"ComputeReservation: {scheduling.compute_reservation}",
    ]
    distribution = scheduling.share_distribution()
    if not distribution:
        lines.append("ShareDistribution: []")
    else:
        lines.append("ShareDistribution:")
        lines.extend(f"  - {{ShareIdentifier: {s}, WeightFactor: {w}}}" for s, w in distribution)
    return [indent + line for line in lines]


def rendered(template: str, scheduling: Scheduling) -> str:
    """The template with its marked block rendered from `scheduling`."""
    lines = template.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"the template needs one block between {BEGIN!r} and {END!r}")
    begin, end = starts[0], ends[0]
    indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
    block = [line + "\n" for line in fairshare_lines(scheduling, indent)]
    return "".join([*lines[: begin + 1], *block, *lines[end:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--write", action="store_true", help="render the template's block in place")
    args = parser.parse_args(argv)
    text = args.template.read_text(encoding="utf-8")
    wanted = rendered(text, load_policy(args.policy).scheduling)
    if wanted == text:
        return 0
    if args.write:
        args.template.write_text(wanted, encoding="utf-8")
        print(f"{args.template}: SchedulingPolicy rendered from {args.policy}")
        return 0
    print(f"{args.template}: SchedulingPolicy differs from {args.policy}; run with --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
