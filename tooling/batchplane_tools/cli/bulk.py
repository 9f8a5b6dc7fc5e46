"""`batchplane cancel` and `batchplane retry` by filter: one bulk operation, call after call, until the
API has no next page. Every call of a run sends the same Idempotency-Key, so a call that timed out or
met a busy AWS is simply sent again (the API finishes it), and a run cut short is finished by running
the same command with the key it printed."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from typing import Any

from batchplane_tools.cli.client import ApiClient
from batchplane_tools.cli.errors import ApiError, CliError, Unreachable
from batchplane_tools.cli.render import print_json, table, when
from batchplane_tools.cli.targets import resolve_target

# A call works for up to ~20 s before it answers (the API's budget under API Gateway's 29 s).
CALL_TIMEOUT = 40.0
TRIES = 5
# AWS busy past the API's retries; API Gateway stopped waiting while the call went on.
AGAIN = frozenset({503, 504})
DONE = {"cancel": "cancelled", "retry": "retried"}
SHOWN = 20  # a dry run lists this many of the jobs it would change


def has_filter(args: argparse.Namespace) -> bool:
    return any((args.statuses, args.job_type, args.created_from, args.created_to))


def run(args: argparse.Namespace, action: str) -> int:
    client = resolve_target(args)
    if not args.timeout:
        client.timeout = CALL_TIMEOUT
    key = None if args.dry_run else args.idempotency_key or f"cli-{uuid.uuid4()}"
    criteria = {
        "status": args.statuses,
        "job_type": args.job_type,
        "created_from": args.created_from,
        "created_to": args.created_to,
    }
    chosen = {name: value for name, value in criteria.items() if value}
    token: str | None = None
    jobs: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    calls = 0
    as_of = None
    while True:
        answer = _call(client, action, chosen, args, key=key, token=token, reached=calls > 0)
        calls += 1
        as_of = as_of or answer.get("as_of")
        jobs.extend(answer.get("jobs", []))
        counts.update(answer.get("counts", {}))
        token = answer.get("next_token")
        if not token:
            break
        if not args.json:
            print(f"... {len(jobs)} job(s) so far", file=sys.stderr, flush=True)
    summary = {k: n for k, n in counts.items() if n}
    if args.json:
        print_json(
            {
                "action": action,
                "dry_run": args.dry_run,
                "as_of": as_of,
                "idempotency_key": key,
                "calls": calls,
                "counts": dict(counts),
                "jobs": jobs,
            }
        )
        return 0
    if args.dry_run:
        shown = [(j["job_id"], j["outcome"]) for j in jobs[:SHOWN]]
        if shown:
            print(table(("JOB_ID", "OUTCOME"), shown))
        if len(jobs) > SHOWN:
            print(f"... and {len(jobs) - SHOWN} more")
        print(f"{len(jobs)} job(s) would be {DONE[action]} (dry run: nothing changed; as of {when(as_of)})")
        return 0
    left = [(j["job_id"], j["outcome"]) for j in jobs if j["outcome"] != DONE[action]]
    if left:
        print(table(("JOB_ID", "OUTCOME"), left))
    said = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.items())) or f"0 {DONE[action]}"
    print(f"{said} (as of {when(as_of)}; {calls} call(s); --idempotency-key {key})")
    return 0


def _call(
    client: ApiClient,
    action: str,
    chosen: dict[str, object],
    args: argparse.Namespace,
    *,
    key: str | None,
    token: str | None,
    reached: bool,
) -> dict[str, Any]:
    """One call, sent again (the same call) while AWS is busy or the answer did not come in time."""
    for attempt in range(TRIES):
        try:
            return client.bulk(
                action, chosen, dry_run=args.dry_run, limit=args.limit, next_token=token, idempotency_key=key
            )
        except (ApiError, Unreachable) as error:
            # An unreachable API before any answer is no stack at all: said at once, not waited for.
            again = error.status in AGAIN if isinstance(error, ApiError) else reached
            if again and attempt < TRIES - 1:
                time.sleep(2**attempt)
                continue
            if key is None or not (again or reached):
                raise
            failed = CliError(f"{error}; run it again with --idempotency-key {key} to finish it")
            failed.exit_code = error.exit_code
            raise failed from None
    raise AssertionError(f"{TRIES} tries neither answered nor raised")
