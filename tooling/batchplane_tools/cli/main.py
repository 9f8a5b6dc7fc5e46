"""The `batchplane` command: `batchplane local` runs the stack; the rest talk to its REST API."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from batchplane_tools.cli import commands
from batchplane_tools.cli.arguments import build_parser

if TYPE_CHECKING:
    from batchplane_tools.local.stack import LocalOptions
    from batchplane_tools.state_file import LocalInfo


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return run_local(args)
    if args.command == "console":
        from batchplane_tools.console import command

        return command.run(args, _stop_on_signals())
    return commands.run(args)


def run_local(args: argparse.Namespace) -> int:
    """Start the local stack, say where it is, and run it until SIGINT or SIGTERM."""
    # Imported here: the stack loads moto and the handlers, which the API's subcommands do not need.
    from batchplane_tools.emulator.supervisor import check_platform
    from batchplane_tools.local.stack import LocalStack

    try:
        check_platform()  # before anything starts: the emulator supervises jobs through Linux's /proc
    except RuntimeError as error:
        print(f"batchplane: {error}", file=sys.stderr)
        return 1
    if not 0.0 <= args.spot_interruption_rate <= 1.0:
        print("batchplane: --spot-interruption-rate must be between 0 and 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = _local_options(args)
    started = time.perf_counter()
    stack = LocalStack(options)
    stopping = _stop_on_signals()
    try:
        info = stack.start()
    except OSError as error:
        stack.stop()
        print(f"batchplane: cannot start the local stack: {error}", file=sys.stderr)
        return 1
    print(banner(info, options, time.perf_counter() - started, stack.files.state_file), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
    return 0


def _local_options(args: argparse.Namespace) -> LocalOptions:
    from batchplane_tools.local.stack import LocalOptions

    options = LocalOptions(
        api_port=args.api_port,
        console_port=args.console_port,
        aws_port=args.aws_port,
        host=args.host,
        workers=args.workers,
        spot_interruption_rate=args.spot_interruption_rate,
        spot_interruption_after=args.spot_interruption_after,
        seed=args.seed,
        state_file=args.state_file,
        sweep_interval=args.sweep_interval,
        concurrency=args.concurrency,
        keep_job_logs=args.keep_job_logs,
        starve_spot=args.starve_spot,
        block_queues=tuple(args.block_queue),
    )
    if args.policy:
        options.policy = args.policy.resolve()
    return options


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGINT or SIGTERM (Ctrl-C, or `make` and the tests stopping us)."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stopping


def try_commands(info: LocalInfo) -> list[str]:
    """The commands the banner suggests, each of which works as written on a fresh stack, from the
    checkout's root (tests/e2e runs them): the sample object they name is the stack's own."""
    bp = ".venv/bin/batchplane"
    sample = f"s3://{info.ingest_bucket}/incoming/{info.tenant}/manual/hamlet.txt"
    return [
        f". {info.env_file}",
        f"{bp} submit word-count -p input={sample} --wait",
        f"{bp} drop README.md --key incoming/{info.tenant}/word-count/readme.txt",
        f"{bp} list",
        f"curl -s -H 'Authorization: Tenant {info.tenant}' {info.api_url}/jobs",
        f"aws s3 ls s3://{info.artifact_bucket}/outputs/ --recursive",
        "aws batch describe-job-queues --query 'jobQueues[].jobQueueName'",
    ]


def banner(info: LocalInfo, options: LocalOptions, ready: float, state_file: Path) -> str:
    """What `batchplane local` prints once ready: its endpoints, its files, and commands to try."""
    commands = "\n".join(f"  {command}" for command in try_commands(info))
    return f"""
batchplane local is ready ({ready:.1f} s)
  REST API        {info.api_url}      (tenant from `Authorization: Tenant <name>`, default "local")
  console         {info.console_url}     (jobs, attempts, logs, summary; every tenant: "local" is an operator)
  AWS endpoint    {info.aws_endpoint_url}      (every service: DynamoDB, S3, SQS, SNS, EventBridge, \
CloudWatch Logs, and Batch)
  Batch emulator  {info.batch_endpoint_url}  ({options.workers} job slots, Spot interruption rate \
{options.spot_interruption_rate})
  concurrency     {options.concurrency} (invocations of one function at once)
  ingest bucket   {info.ingest_bucket}
  state file      {state_file}
  jobs' output    {info.jobs_dir}  (the newest {options.keep_job_logs} ended jobs'; removed on stop)
  AWS env file    {info.env_file}  (source it: endpoint, credentials and region for the AWS CLI and SDKs)

Try, in another terminal, from this checkout (a job's output: .venv/bin/batchplane logs JOB_ID):
{commands}

Ctrl-C stops everything."""


if __name__ == "__main__":
    raise SystemExit(main())
