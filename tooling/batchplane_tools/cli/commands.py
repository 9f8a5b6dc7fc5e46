"""The API's subcommands of `batchplane`: submit, get, list, logs, cancel, retry (one job, or by filter:
`bulk.py`), drop and watch.

`run(args)` carries out the one `arguments.py` parsed. Output is plain text with aligned columns, or
the API's JSON with `--json`. Errors are one line on stderr: exit 1 when the API refused, 2 when it
could not be reached or the command cannot be carried out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from batchplane_tools.cli import bulk, watch
from batchplane_tools.cli.arguments import DEFAULT_PREFIX
from batchplane_tools.cli.client import ApiClient, Job, Page
from batchplane_tools.cli.errors import CliError, ConfigError
from batchplane_tools.cli.ingest import resolve_ingest
from batchplane_tools.cli.render import (
    format_job,
    format_jobs,
    format_log_line,
    format_usage,
    now,
    print_json,
)
from batchplane_tools.cli.statuses import TERMINAL
from batchplane_tools.cli.targets import resolve_table, resolve_target


def run(args: argparse.Namespace) -> int:
    """Carry out the API subcommand parsed into `args`; returns the exit status."""
    handler = _HANDLERS.get(args.command)
    if handler is None:
        print(f"batchplane: unknown command {args.command!r}", file=sys.stderr)
        return 2
    try:
        return handler(args)
    except CliError as error:
        print(f"batchplane: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("batchplane: interrupted", file=sys.stderr)
        return 130


def _submit(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    job = client.submit(
        args.job_type,
        dict(args.params),
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        inputs=args.inputs,
        idempotency_key=args.idempotency_key,
        priority=args.priority,
        hold=args.hold,
    )
    if not args.json:
        print(f"{job.get('job_id')}  {job.get('status')}", flush=True)
    if not args.wait:
        if args.json:
            print_json(job)
        return 0
    job = _wait(client, job, args.interval)
    if args.json:
        print_json(job)
    else:
        print()
        print(format_job(job))
    return 0 if job.get("status") == "SUCCEEDED" else 1


def _wait(client: ApiClient, job: Job, interval: float) -> Job:
    """Poll until the job is in a terminal status, telling each change on stderr."""
    job_id = str(job.get("job_id"))
    status = job.get("status")
    while status not in TERMINAL:
        time.sleep(interval)
        job = client.get(job_id)
        if job.get("status") != status:
            status = job.get("status")
            print(f"{now()}  {job_id}  {status}", file=sys.stderr, flush=True)
    return job


def _get(args: argparse.Namespace) -> int:
    job = resolve_target(args).get(args.job_id)
    if args.json:
        print_json(job)
    else:
        print(format_job(job))
    return 0


def _whose(args: argparse.Namespace) -> dict[str, Any]:
    """`--tenant T` (that tenant's jobs: locally it also acts as T) or `--all-tenants` (every tenant's
    unfinished jobs); another tenant's only for the policy's operators."""
    if args.all_tenants and args.tenant:
        raise ConfigError("--all-tenants and --tenant exclude each other")
    return {"tenant": args.tenant, "all_tenants": bool(args.all_tenants)}


def _list(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    whose = _whose(args)
    token: str | None = None
    if args.all:
        jobs = client.list_all(status=args.status, job_type=args.job_type, limit=args.limit, **whose)
    else:
        page = client.list(
            status=args.status, job_type=args.job_type, limit=args.limit, next_token=args.next_token, **whose
        )
        jobs, token = page["jobs"], page.get("next_token")
    if args.json:
        print_json({"jobs": jobs, "next_token": token})
        return 0
    print(format_jobs(jobs, tenants=bool(args.tenant or args.all_tenants)) if jobs else "no jobs")
    if token:
        print(f"more jobs: pass --all, or --next-token {token}", file=sys.stderr)
    return 0


def _logs(args: argparse.Namespace) -> int:
    """Page through the attempt's log; with --follow, ask again every --interval until the API says
    the attempt has ended and its log is read (next_token null)."""
    client = resolve_target(args)
    attempt: int | None = args.attempt
    if attempt is None:
        ran = [a for a in client.get(args.job_id).get("attempts") or [] if a.get("log_stream")]
        if not ran:
            raise ConfigError(f"job {args.job_id} has no attempt that ran yet: no log")
        attempt = int(ran[-1]["number"])
    token: str | None = None
    first = True
    while True:
        page = client.log(args.job_id, attempt, next_token=token)
        if first and not args.json:
            print(
                f"# {page.get('job_id')} attempt {page.get('attempt')}: {page.get('where')}", file=sys.stderr
            )
        first = False
        for line in page.get("lines") or []:
            print(json.dumps(line) if args.json else format_log_line(line), flush=True)
        following = page.get("next_token")
        if following is None:
            return 0
        if not page.get("lines"):
            if not args.follow:
                return 0
            time.sleep(args.interval)
        token = following


def _cancel(args: argparse.Namespace) -> int:
    return _act(args, "cancel", ApiClient.cancel)


def _retry(args: argparse.Namespace) -> int:
    return _act(args, "retry", ApiClient.retry)


def _act(args: argparse.Namespace, name: str, action: Callable[[ApiClient, str], Job]) -> int:
    """One job by its id, or (without one) every job a filter selects."""
    if args.job_id is None:
        if not bulk.has_filter(args):
            raise ConfigError(
                f"{name} what? JOB_ID, or a filter: --status, --job-type, --created-from, --created-to"
            )
        return bulk.run(args, name)
    if bulk.has_filter(args) or args.dry_run or args.limit or args.idempotency_key:
        raise ConfigError(f"{name} JOB_ID takes no filter, --dry-run, --limit or --idempotency-key")
    job = action(resolve_target(args), args.job_id)
    if args.json:
        print_json(job)
    else:
        print(f"{job.get('job_id')}  {job.get('status')}")
    return 0


def _drop(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    ingest = resolve_ingest(args)
    prefix: str | None = args.prefix
    if prefix is None and not args.key:
        if ingest.tenant is None:
            raise ConfigError(
                "with --url, pass --key, --prefix, or --tenant (whose incoming/<tenant>/ it is)"
            )
        prefix = DEFAULT_PREFIX.format(tenant=ingest.tenant)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    key: str = args.key or (prefix or "") + path.name
    uri = ingest.upload(path, key)
    if args.json:
        print_json({"uri": uri, "bucket": ingest.bucket, "key": key, "size": path.stat().st_size})
    else:
        print(uri)
    return 0


def _watch(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    whose = _whose(args)
    every = bool(args.all_tenants)

    def fetch() -> Page:
        return client.list(status=args.status, job_type=args.job_type, limit=args.limit, **whose)

    if not args.once:
        return watch.live(client, fetch, interval=args.interval, as_json=args.json, all_tenants=every)
    page = fetch()
    if args.json:
        print_json(page)
    else:
        print(watch.frame(client, page, all_tenants=every))
    return 0


def _usage(args: argparse.Namespace) -> int:
    usage = resolve_target(args).usage(args.first, args.last)
    if args.json:
        print_json(usage)
    else:
        print(format_usage(usage))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from batchplane_tools.replay.command import run_replay

    return run_replay(args)


def _migrate(args: argparse.Namespace) -> int:
    from batchplane_tools.migrate import migrate_table

    client, table, retention_days = resolve_table(args)
    retention = timedelta(days=args.retention_days or retention_days)
    report = migrate_table(client, table, retention=retention, dry_run=args.dry_run)
    if args.dry_run:
        print(f"{len(report.found)} job(s) of the earlier layout in {table}; nothing written (--dry-run)")
    else:
        print(f"{len(report.migrated)} of {len(report.found)} job(s) of the earlier layout moved in {table}")
    return 0


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "submit": _submit,
    "get": _get,
    "list": _list,
    "logs": _logs,
    "cancel": _cancel,
    "retry": _retry,
    "drop": _drop,
    "watch": _watch,
    "migrate": _migrate,
    "usage": _usage,
    "replay": _replay,
}
