"""The `batchplane` argument parser: `local`, then the API's subcommands with the options they share
(their argument types: argument_types.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from batchplane_tools.cli.argument_types import (
    concurrency,
    date,
    instant,
    month,
    param,
    positive_float,
    positive_int,
    status,
    statuses,
)
from batchplane_tools.paths import STATE_FILE

DESCRIPTION = "The `batchplane` command: `batchplane local` runs the stack; the rest talk to its REST API."
# A tenant's file drops go under its own prefix (the policy's file_drop rules, incoming/{tenant}/...).
DEFAULT_PREFIX = "incoming/{tenant}/word-count/"

if TYPE_CHECKING:  # _SubParsersAction is generic in typeshed only, not at run time
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the subcommand's name is parsed into `args.command`."""
    parser = argparse.ArgumentParser(prog="batchplane", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_local_command(subparsers)
    add_console_command(subparsers)
    add_api_commands(subparsers)
    return parser


# --- local -------------------------------------------------------------------------------------------


def add_local_command(subparsers: Subparsers) -> None:
    local = subparsers.add_parser(
        "local",
        help="run batchplane on this machine: embedded AWS (moto) and a local Batch emulator",
        description="Run the production handlers on an embedded AWS and a Batch emulator that runs jobs "
        "as local processes. Ctrl-C stops everything.",
    )
    local.add_argument("--api-port", type=int, default=8080, help="REST API port (default 8080; 0: any)")
    local.add_argument("--aws-port", type=int, default=5000, help="embedded AWS endpoint port (default 5000)")
    local.add_argument(
        "--console-port", type=int, default=8081, help="web console port (default 8081; 0: any)"
    )
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--policy", type=Path, help="policy document (default layers/core/policy.yaml)")
    local.add_argument(
        "--workers", type=int, default=2, help="job slots; 0 runs nothing (jobs wait RUNNABLE)"
    )
    local.add_argument(
        "--spot-interruption-rate",
        type=float,
        default=0.0,
        help="chance (0..1) that a job on a Spot queue is interrupted while it runs",
    )
    local.add_argument(
        "--spot-interruption-after",
        type=float,
        default=1.0,
        help="an interrupted Spot job dies within this many seconds of starting to run (default 1)",
    )
    local.add_argument(
        "--starve-spot",
        action="store_true",
        help="Spot jobs get no capacity: they stay RUNNABLE with CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY "
        'and a "Batch Job Queue Blocked" event, as in a Spot shortage',
    )
    local.add_argument(
        "--block-queue",
        action="append",
        default=[],
        metavar="NAME[:REASON]",
        help="the job queue NAME (its name, or `spot` / `on-demand`) places no job: its jobs stay RUNNABLE "
        'with REASON (default MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT) and a "Batch Job Queue '
        'Blocked" event; repeatable',
    )
    local.add_argument("--seed", type=int, help="seed for the chaos, for repeatable runs")
    local.add_argument(
        "--sweep-interval", type=float, help="seconds between sweeps (default: the template's)"
    )
    local.add_argument(
        "--concurrency",
        type=concurrency,
        default=1,
        metavar="N|template",
        help="invocations of one function at once: N, or `template` for each function's reserved "
        "concurrency (8 where the template sets none); a reserved concurrency caps N too (default 1)",
    )
    local.add_argument(
        "--state-file",
        type=Path,
        default=STATE_FILE,
        help="where the endpoints are written as JSON once ready (default .local/batchplane-local.json; "
        "<name>-<pid>.json beside it while another running stack holds it); the stack's own files go in "
        "the directory of the same name without .json, removed on stop",
    )
    local.add_argument(
        "--keep-job-logs",
        type=positive_int,
        default=200,
        metavar="N",
        help="ended jobs whose output files stay in the state directory (default 200; their lines "
        "stay in the local CloudWatch Logs)",
    )


# --- console -----------------------------------------------------------------------------------------


def add_console_command(subparsers: Subparsers) -> None:
    console = subparsers.add_parser(
        "console",
        help="the web console on localhost, for a deployed API (--api) or the local stack",
        description="Serve the web console on localhost. With --api, its pages read that deployed API, "
        "each request signed with SigV4 with your default AWS credentials (the browser holds none); "
        "without, the running local stack's API.",
    )
    console.add_argument(
        "--api", help="a deployed API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/v1"
    )
    console.add_argument("--port", type=int, default=8081, help="port to serve on (default 8081; 0: any)")
    console.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--region", help="AWS region for signing (default: from the URL)")
    console.add_argument(
        "--local-file",
        type=Path,
        help="without --api: the local stack's endpoints file (default .local/batchplane-local.json)",
    )


# --- the API's subcommands ---------------------------------------------------------------------------


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """--url, --local-file, --tenant, --region, --timeout and --json: every subcommand of
    `add_api_commands()` takes them (`batchplane get ID --url ...`)."""
    group = parser.add_argument_group("API options")
    group.add_argument(
        "--url",
        help="a deployed API, e.g. https://abc.execute-api.eu-west-1.amazonaws.com/v1; requests are "
        "signed with SigV4 (default: $BATCHPLANE_API_URL, else the local stack)",
    )
    group.add_argument(
        "--local-file",
        type=Path,
        help="the local stack's endpoints file (default: $BATCHPLANE_LOCAL_FILE, "
        "else .local/batchplane-local.json)",
    )
    group.add_argument("--tenant", help="tenant to act as on the local stack (default: local)")
    group.add_argument("--region", help="AWS region for signing (default: from the URL)")
    group.add_argument("--timeout", type=positive_float, help="HTTP timeout, s (default 10)")
    group.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")


def add_api_commands(subparsers: Subparsers) -> None:
    """Add submit, get, list, logs, cancel, retry, drop and watch, in the order `--help` lists them."""
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common)

    def command(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        return subparsers.add_parser(
            name, help=help_text, description=description or help_text, parents=[common]
        )

    _submit_arguments(
        command(
            "submit",
            "submit a job",
            "Submit a job; prints its id and status. With --wait, waits until it finishes and prints it; "
            "the exit status is then 0 only if it SUCCEEDED.",
        )
    )
    command("get", "show a job with its attempts, history and artifacts").add_argument(
        "job_id", metavar="JOB_ID"
    )
    _list_arguments(command("list", "list your jobs, newest first"))
    _logs_arguments(
        command(
            "logs",
            "print an attempt's output (its log)",
            "Print the log of a job's attempt (default: its latest that ran), oldest line first, each "
            "with its time (UTC). With --follow, keep printing new lines until the attempt ends.",
        )
    )
    _bulk_arguments(
        command(
            "cancel",
            "cancel a job, or every job a filter selects; a submitted Batch job is terminated",
            "Cancel JOB_ID; or, with a filter instead, every unfinished job of yours it selects, page "
            "by page (--dry-run only counts them). Prints each job left as it was, and the counts.",
        )
    )
    _bulk_arguments(
        command(
            "retry",
            "start a new attempt of a FAILED or CANCELLED job, or of every one a filter selects",
            "Retry JOB_ID; or, with a filter instead, every FAILED or CANCELLED job of yours it "
            "selects, page by page (--dry-run only counts them). Jobs over the in-flight limit are "
            "listed, not retried.",
        )
    )
    _drop_arguments(
        command(
            "drop",
            "upload a file to the ingest bucket, where it becomes a job",
            "Upload a file into the ingest bucket (the local stack's, or --bucket with --url); the "
            "file-drop rules of the policy turn it into a job. Prints the object's s3:// URI.",
        )
    )
    _watch_arguments(command("watch", "a live table of your jobs (Ctrl-C quits)"))
    usage = command(
        "usage",
        "your estimated spend by month, job type and outcome",
        "Your jobs' estimated cost (GET /usage) from --from to --to, months (default: this month), by "
        "job type and outcome, with what retries and fallbacks added.",
    )
    usage.add_argument("--from", dest="first", type=month, help="first month, YYYY-MM")
    usage.add_argument("--to", dest="last", type=month, help="last month, YYYY-MM (default: this month)")
    _replay_arguments(
        subparsers.add_parser(
            "replay",
            help="what a candidate policy would have decided for the recorded jobs (reads only)",
            description="Re-run admission, routing and retry decisions of the recorded jobs against a "
            "candidate policy and print what would differ, per job type, with each job's first point "
            "of divergence. Reads the jobs table only (Scan and Query). Exit 0: no difference; 1: "
            "differences; 2: the candidate does not validate (or the command cannot run).",
        )
    )
    _migrate_arguments(
        subparsers.add_parser(
            "migrate",
            help="move the jobs of the earlier item layout into the current one (once, after an upgrade)",
            description="Rewrite every job the earlier item layout wrote (attempts, history and outputs "
            "inside the job's item) into the current layout. Reads with Scan, so it runs with your AWS "
            "credentials, not through the API. Without --table, the local stack's table.",
        )
    )


def _replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("--policy", type=Path, required=True, help="the candidate policy document")
    replay.add_argument("--since", type=date, help="only jobs created from this date (UTC) on")
    replay.add_argument("--tenant", help="only this tenant's jobs")
    replay.add_argument("--format", choices=("text", "json"), default="text", help="output (default text)")
    replay.add_argument(
        "--ingest-bucket",
        help="the stack's ingest bucket, for the policy's @ingest input sources (default: the local stack's)",
    )
    replay.add_argument(
        "--seed", type=int, default=0, help="seed for the retries' backoff jitter (default 0)"
    )
    _table_arguments(replay)


def _table_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", help="the jobs table (the stack's JobsTableName output)")
    parser.add_argument("--region", help="its region (default: the environment's or profile's)")
    parser.add_argument(
        "--local-file",
        type=Path,
        default=None,
        help=f"without --table: the local stack's file (default {STATE_FILE})",
    )


def _migrate_arguments(migrate: argparse.ArgumentParser) -> None:
    _table_arguments(migrate)
    migrate.add_argument(
        "--retention-days",
        type=positive_int,
        help="the stack's JobRetentionDays, for the records it writes (default: the local stack's, else 90)",
    )
    migrate.add_argument("--dry-run", action="store_true", help="only count the jobs to move")


def _bulk_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID", nargs="?", help="one job; or leave it out and filter")
    bulk = parser.add_argument_group("by filter (instead of JOB_ID)")
    bulk.add_argument(
        "--status",
        dest="statuses",
        type=statuses,
        action="extend",
        metavar="STATUS[,STATUS]",
        help="only jobs in these statuses (repeatable)",
    )
    bulk.add_argument("--job-type", help="only jobs of this type")
    bulk.add_argument("--created-from", type=instant, metavar="TIME", help="created at or after (ISO 8601)")
    bulk.add_argument("--created-to", type=instant, metavar="TIME", help="created at or before (ISO 8601)")
    bulk.add_argument("--dry-run", action="store_true", help="only count and list the jobs; change nothing")
    bulk.add_argument("--limit", type=positive_int, help="jobs a call takes (default: the API's)")
    bulk.add_argument(
        "--idempotency-key",
        help="name the operation: the same key and filter again finish one cut short (default: a new one)",
    )


def _submit_arguments(submit: argparse.ArgumentParser) -> None:
    submit.add_argument("job_type", metavar="JOB_TYPE", help="a job type of the policy, e.g. word-count")
    submit.add_argument(
        "-p",
        "--param",
        dest="params",
        metavar="NAME=VALUE",
        type=param,
        action="append",
        default=[],
        help="a job parameter (repeatable)",
    )
    submit.add_argument(
        "--input",
        dest="inputs",
        metavar="S3_URI",
        action="append",
        default=[],
        help="an input object (repeatable)",
    )
    submit.add_argument("--vcpus", type=positive_int, help="vCPUs (default: the job type's)")
    submit.add_argument("--memory-mib", type=positive_int, help="memory, MiB (default: the job type's)")
    submit.add_argument(
        "--priority", type=int, help="scheduling priority within the tenant's share (default: its range's)"
    )
    submit.add_argument("--idempotency-key", help="the same key and body return the same job")
    submit.add_argument(
        "--hold",
        action="store_true",
        help="over the tenant's in-flight limit, be held (HELD) until a slot frees instead of refused (429)",
    )
    submit.add_argument("--wait", action="store_true", help="wait until the job finishes")
    submit.add_argument(
        "--interval", type=positive_float, default=2.0, help="with --wait: seconds between polls"
    )


def _list_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--status", type=status, help="only jobs in this status")
    listing.add_argument("--job-type", help="only jobs of this type")
    listing.add_argument("--limit", type=positive_int, help="jobs per page (default: the API's)")
    listing.add_argument("--next-token", help="the page after a previous listing's")
    listing.add_argument("--all", action="store_true", help="every page, following next_token")
    _whose_arguments(listing)


def _whose_arguments(parser: argparse.ArgumentParser) -> None:
    """`--tenant` (an API option) names whose jobs; this adds every tenant's (operators only)."""
    parser.add_argument(
        "--all-tenants",
        action="store_true",
        help="every tenant's unfinished jobs (the policy's api.operators only; the local caller is one); "
        "--tenant T lists T's",
    )


def _logs_arguments(logs: argparse.ArgumentParser) -> None:
    logs.add_argument("job_id", metavar="JOB_ID")
    logs.add_argument("--attempt", type=positive_int, help="the attempt (default: the latest that ran)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the attempt ends")
    logs.add_argument(
        "--interval", type=positive_float, default=1.0, help="with --follow: seconds between polls"
    )


def _drop_arguments(drop: argparse.ArgumentParser) -> None:
    drop.add_argument("file", metavar="FILE", type=Path)
    drop.add_argument("--key", help="the object key (default: PREFIX + the file's name)")
    drop.add_argument(
        "--prefix",
        help=f"key prefix (default {DEFAULT_PREFIX}, the tenant being --tenant, or the local stack's)",
    )
    drop.add_argument("--bucket", help="the ingest bucket (required with --url)")


def _watch_arguments(watch: argparse.ArgumentParser) -> None:
    watch.add_argument(
        "--interval", type=positive_float, default=1.0, help="seconds between redraws (default 1)"
    )
    watch.add_argument("--status", type=status, help="only jobs in this status")
    watch.add_argument("--job-type", help="only jobs of this type")
    watch.add_argument("--limit", type=positive_int, default=50, help="newest jobs shown (default 50)")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")
    _whose_arguments(watch)
