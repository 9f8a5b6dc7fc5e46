"""The API's subcommands of `batchplane`: submit, get, list, cancel, retry, drop and watch.

`register(subparsers)` adds them to the `batchplane` parser and `run(args)` carries one out. Output is
plain text with aligned columns, or the API's JSON with `--json`. Errors are one line on stderr: exit 1
when the API refused, 2 when it could not be reached or the command cannot be carried out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchplane_tools.cli.client import (
    ApiClient,
    CliError,
    ConfigError,
    Job,
    Unreachable,
    resolve_ingest,
    resolve_target,
)

STATUSES = (
    "QUEUED",
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "RETRY_WAIT",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
)
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
DEFAULT_PREFIX = "incoming/word-count/"

CLEAR_SCREEN = "\x1b[2J"
HOME = "\x1b[H"
CLEAR_LINE = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"


# --- options -----------------------------------------------------------------------------------------


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """--url, --local-file, --tenant, --region, --timeout and --json: every subcommand of `register()`
    takes them (`batchplane get ID --url ...`)."""
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
    group.add_argument("--timeout", type=_positive_float, help="HTTP timeout, s (default 10)")
    group.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _status(text: str) -> str:
    status = text.strip().upper()
    if status not in STATUSES:
        raise argparse.ArgumentTypeError(f"unknown status {text!r} (one of {', '.join(STATUSES)})")
    return status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add submit, get, list, cancel, retry, drop and watch to the `batchplane` parser."""
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common)

    def command(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            name, help=help_text, description=description or help_text, parents=[common]
        )
        parser.set_defaults(bp_command=name)
        return parser

    submit = command(
        "submit",
        "submit a job",
        "Submit a job; prints its id and status. With --wait, waits until it finishes and prints it; "
        "the exit status is then 0 only if it SUCCEEDED.",
    )
    submit.add_argument("job_type", metavar="JOB_TYPE", help="a job type of the policy, e.g. word-count")
    submit.add_argument(
        "-p",
        "--param",
        dest="params",
        metavar="NAME=VALUE",
        type=_param,
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
    submit.add_argument("--vcpus", type=_positive_int, help="vCPUs (default: the job type's)")
    submit.add_argument("--memory-mib", type=_positive_int, help="memory, MiB (default: the job type's)")
    submit.add_argument("--idempotency-key", help="the same key and body return the same job")
    submit.add_argument("--wait", action="store_true", help="wait until the job finishes")
    submit.add_argument(
        "--interval", type=_positive_float, default=2.0, help="with --wait: seconds between polls"
    )

    get = command("get", "show a job with its attempts, history and artifacts")
    get.add_argument("job_id", metavar="JOB_ID")

    listing = command("list", "list your jobs, newest first")
    listing.add_argument("--status", type=_status, help="only jobs in this status")
    listing.add_argument("--job-type", help="only jobs of this type")
    listing.add_argument("--limit", type=_positive_int, help="jobs per page (default: the API's)")
    listing.add_argument("--next-token", help="the page after a previous listing's")
    listing.add_argument("--all", action="store_true", help="every page, following next_token")

    cancel = command("cancel", "cancel a job; a submitted Batch job is terminated")
    cancel.add_argument("job_id", metavar="JOB_ID")

    retry = command("retry", "start a new attempt of a FAILED or CANCELLED job")
    retry.add_argument("job_id", metavar="JOB_ID")

    drop = command(
        "drop",
        "upload a file to the ingest bucket, where it becomes a job",
        "Upload a file into the ingest bucket (the local stack's, or --bucket with --url); the file-drop "
        "rules of the policy turn it into a job. Prints the object's s3:// URI.",
    )
    drop.add_argument("file", metavar="FILE", type=Path)
    drop.add_argument("--key", help="the object key (default: PREFIX + the file's name)")
    drop.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"key prefix (default {DEFAULT_PREFIX})")
    drop.add_argument("--bucket", help="the ingest bucket (required with --url)")

    watch = command("watch", "a live table of your jobs (Ctrl-C quits)")
    watch.add_argument(
        "--interval", type=_positive_float, default=1.0, help="seconds between redraws (default 1)"
    )
    watch.add_argument("--status", type=_status, help="only jobs in this status")
    watch.add_argument("--job-type", help="only jobs of this type")
    watch.add_argument("--limit", type=_positive_int, default=50, help="newest jobs shown (default 50)")
    watch.add_argument("--once", action="store_true", help="print one frame and exit")


# --- running -----------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Carry out the subcommand `register()` parsed into `args`; returns the exit status."""
    handler = _HANDLERS.get(getattr(args, "bp_command", ""))
    if handler is None:
        print(f"batchplane: unknown command {getattr(args, 'bp_command', None)!r}", file=sys.stderr)
        return 2
    try:
        return handler(args)
    except CliError as error:
        print(f"batchplane: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("batchplane: interrupted", file=sys.stderr)
        return 130


def _json_output(args: argparse.Namespace) -> bool:
    return bool(args.json)


def _print_json(doc: object) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def _submit(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    job = client.submit(
        args.job_type,
        dict(args.params),
        vcpus=args.vcpus,
        memory_mib=args.memory_mib,
        inputs=args.inputs,
        idempotency_key=args.idempotency_key,
    )
    if not _json_output(args):
        print(f"{job.get('job_id')}  {job.get('status')}", flush=True)
    if not args.wait:
        if _json_output(args):
            _print_json(job)
        return 0
    job = _wait(client, job, args.interval)
    if _json_output(args):
        _print_json(job)
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
            print(f"{_now()}  {job_id}  {status}", file=sys.stderr, flush=True)
    return job


def _get(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    job = client.get(args.job_id)
    if _json_output(args):
        _print_json(job)
    else:
        print(format_job(job))
    return 0


def _list(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    token: str | None = None
    if args.all:
        jobs = client.list_all(status=args.status, job_type=args.job_type, limit=args.limit)
    else:
        page = client.list(
            status=args.status, job_type=args.job_type, limit=args.limit, next_token=args.next_token
        )
        jobs, token = page["jobs"], page.get("next_token")
    if _json_output(args):
        _print_json({"jobs": jobs, "next_token": token})
        return 0
    print(format_jobs(jobs) if jobs else "no jobs")
    if token:
        print(f"more jobs: pass --all, or --next-token {token}", file=sys.stderr)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    return _act(args, ApiClient.cancel)


def _retry(args: argparse.Namespace) -> int:
    return _act(args, ApiClient.retry)


def _act(args: argparse.Namespace, action: Callable[[ApiClient, str], Job]) -> int:
    job = action(resolve_target(args), args.job_id)
    if _json_output(args):
        _print_json(job)
    else:
        print(f"{job.get('job_id')}  {job.get('status')}")
    return 0


def _drop(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    prefix: str = args.prefix or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    key: str = args.key or prefix + path.name
    ingest = resolve_ingest(args)

    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    uri = f"s3://{ingest.bucket}/{key}"
    try:
        ingest.s3.upload_file(str(path), ingest.bucket, key)
    except (EndpointConnectionError, ConnectTimeoutError) as error:
        why = "timed out" if isinstance(error, ConnectTimeoutError) else "connection refused"
        raise Unreachable(ingest.endpoint, why, hint=ingest.hint, what=ingest.what) from None
    except NoCredentialsError:
        raise ConfigError("no AWS credentials to upload with; configure a profile (AWS_PROFILE)") from None
    except (ClientError, S3UploadFailedError) as error:
        raise _Failed(f"cannot upload {path} to {uri}: {error}") from None
    if _json_output(args):
        _print_json({"uri": uri, "bucket": ingest.bucket, "key": key, "size": path.stat().st_size})
    else:
        print(uri)
    return 0


class _Failed(CliError):
    exit_code = 1


def _watch(args: argparse.Namespace) -> int:
    client = resolve_target(args)
    if args.once:
        page = client.list(status=args.status, job_type=args.job_type, limit=args.limit)
        if _json_output(args):
            _print_json(page)
        else:
            print(watch_frame(client, page))
        return 0
    live = sys.stdout.isatty() and not _json_output(args)
    if live:
        sys.stdout.write(HIDE_CURSOR + CLEAR_SCREEN)
    try:
        while True:
            try:
                page = client.list(status=args.status, job_type=args.job_type, limit=args.limit)
                if _json_output(args):
                    print(json.dumps(page, ensure_ascii=False), flush=True)
                    frame = ""
                else:
                    frame = watch_frame(client, page, interval=args.interval)
            except Unreachable as error:  # keep watching through a restart of the stack
                if _json_output(args):
                    raise
                frame = f"{_watch_title(client, args.interval)}\n\n{error}"
            if live:
                _redraw(frame)
            elif frame:
                print(frame + "\n", flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if live:
            sys.stdout.write(SHOW_CURSOR + "\n")
            sys.stdout.flush()


def _redraw(frame: str) -> None:
    size = shutil.get_terminal_size()
    lines = [line[: size.columns] for line in frame.splitlines()][: max(size.lines - 1, 1)]
    sys.stdout.write(HOME + "".join(line + CLEAR_LINE + "\n" for line in lines) + CLEAR_BELOW)
    sys.stdout.flush()


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "submit": _submit,
    "get": _get,
    "list": _list,
    "cancel": _cancel,
    "retry": _retry,
    "drop": _drop,
    "watch": _watch,
}


# --- formatting --------------------------------------------------------------------------------------


def cell(value: object, width: int | None = None) -> str:
    """A value as one table cell: `-` for nothing, on one line, cut to `width` characters."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[: max(width - 3, 1)] + "..."
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
        lines.append(indent + line.rstrip())
    return "\n".join(lines)


def when(value: object) -> str:
    """An ISO 8601 time, to the second, in UTC."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def size(value: object) -> str:
    """A byte count for people: 512 B, 47.1 KiB, 1.0 GiB."""
    if not isinstance(value, int):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover


def mib(value: object) -> str:
    return f"{value} MiB" if isinstance(value, int) else "-"


def _last(items: object) -> dict[str, Any]:
    if isinstance(items, list) and items and isinstance(items[-1], dict):
        return items[-1]
    return {}


def _count(items: object) -> int:
    return len(items) if isinstance(items, list) else 0


def _event_text(entry: dict[str, Any]) -> str | None:
    if not entry:
        return None
    event, reason = entry.get("event"), entry.get("reason")
    return f"{event}: {reason}" if event and reason else (event or reason)


def format_jobs(jobs: Sequence[Job]) -> str:
    """The `list` table: id, type, status, attempts, capacity of the last attempt, last update."""
    rows = [(*_job_columns(job), when(job.get("updated_at"))) for job in jobs]
    return table(("JOB ID", "TYPE", "STATUS", "ATTEMPTS", "CAPACITY", "UPDATED"), rows)


def _job_columns(job: Job) -> tuple[object, ...]:
    """What the `list` and `watch` tables start with: id, type, status, attempts, last capacity."""
    attempts = job.get("attempts")
    return (
        job.get("job_id"),
        job.get("job_type"),
        job.get("status"),
        _count(attempts),
        _last(attempts).get("capacity"),
    )


def format_job(job: Job) -> str:
    """The `get` summary: the job's fields, then its attempts, history and artifacts."""
    parameters = job.get("parameters") or {}
    inputs = job.get("inputs") or []
    fields = [
        ("job", job.get("job_id")),
        ("status", job.get("status")),
        ("type", job.get("job_type")),
        ("tenant", job.get("tenant")),
        ("resources", f"{cell(job.get('vcpus'))} vCPU, {mib(job.get('memory_mib'))}"),
        (
            "parameters",
            ", ".join(f"{k}={v}" for k, v in parameters.items()) if isinstance(parameters, dict) else None,
        ),
        ("inputs", ", ".join(str(i) for i in inputs) if isinstance(inputs, list) else None),
        ("output", job.get("output_prefix")),
        ("created", when(job.get("created_at"))),
        ("updated", when(job.get("updated_at"))),
    ]
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {cell(value)}" for name, value in fields]

    attempts = [a for a in job.get("attempts") or [] if isinstance(a, dict)]
    lines += ["", f"attempts ({len(attempts)})"]
    if attempts:
        rows: list[tuple[object, ...]] = [
            (
                a.get("number"),
                a.get("capacity"),
                mib(a.get("memory_mib")),
                a.get("status"),
                a.get("failure_class"),
                a.get("exit_code"),
                a.get("status_reason"),
            )
            for a in attempts
        ]
        lines.append(table(("#", "CAPACITY", "MEMORY", "STATUS", "FAILURE", "EXIT", "REASON"), rows, "  "))

    history = [h for h in job.get("history") or [] if isinstance(h, dict)]
    lines += ["", f"history ({len(history)})"]
    if history:
        rows = [(when(h.get("at")), h.get("event"), h.get("reason")) for h in history]
        lines.append(table(("AT", "EVENT", "REASON"), rows, "  "))

    artifacts = [a for a in job.get("artifacts") or [] if isinstance(a, dict)]
    lines += ["", f"artifacts ({len(artifacts)})"]
    if artifacts:
        rows = [(a.get("role"), a.get("uri"), size(a.get("size"))) for a in artifacts]
        lines.append(table(("ROLE", "URI", "SIZE"), rows, "  "))
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _watch_title(client: ApiClient, interval: float | None) -> str:
    parts = ["batchplane watch", client.base_url]
    if client.tenant:
        parts.append(f"tenant {client.tenant}")
    parts.append(f"{_now()} UTC")
    if interval is not None:
        parts.append(f"every {interval:g} s, Ctrl-C quits")
    return "  ".join(parts)


def watch_frame(client: ApiClient, page: dict[str, Any], *, interval: float | None = None) -> str:
    """One screen of `watch`: a title, the count per status, and the jobs' table."""
    jobs = [j for j in page.get("jobs") or [] if isinstance(j, dict)]
    counts = Counter(str(j.get("status")) for j in jobs)
    order = {status: i for i, status in enumerate(STATUSES)}
    summary = "  ".join(f"{s} {n}" for s, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99)))
    shown = (
        f"{len(jobs)}+ jobs" if page.get("next_token") else f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}"
    )
    lines = [_watch_title(client, interval), f"{shown}  ({summary})" if summary else shown, ""]
    if not jobs:
        lines.append("no jobs yet")
        return "\n".join(lines)
    rows = [
        (
            *_job_columns(job),
            mib(_last(job.get("attempts")).get("memory_mib", job.get("memory_mib"))),
            cell(_event_text(_last(job.get("history"))), 80),
        )
        for job in jobs
    ]
    lines.append(table(("JOB ID", "TYPE", "STATUS", "ATTEMPTS", "CAPACITY", "MEMORY", "LAST EVENT"), rows))
    return "\n".join(lines)
