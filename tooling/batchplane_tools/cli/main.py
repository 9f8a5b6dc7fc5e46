"""The `batchplane` command: `batchplane local` runs the stack; the rest talk to its REST API."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
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
    print(banner(info, options, time.perf_counter() - started), flush=True)
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
        aws_port=args.aws_port,
        host=args.host,
        workers=args.workers,
        spot_interruption_rate=args.spot_interruption_rate,
        spot_interruption_after=args.spot_interruption_after,
        seed=args.seed,
        state_file=args.state_file,
        sweep_interval=args.sweep_interval,
        concurrency=args.concurrency,
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


def banner(info: LocalInfo, options: LocalOptions, ready: float) -> str:
    """What `batchplane local` prints once ready: its endpoints, and commands to try."""
    return f"""
batchplane local is ready ({ready:.1f} s)
  REST API        {info.api_url}      (tenant from `Authorization: Tenant <name>`, default "local")
  AWS endpoint    {info.aws_endpoint_url}      (moto: DynamoDB, S3, SQS, SNS, EventBridge)
  Batch endpoint  {info.batch_endpoint_url}  ({options.workers} job slots, Spot interruption rate \
{options.spot_interruption_rate})
  concurrency     {options.concurrency} (invocations of one function at once)
  ingest bucket   {info.ingest_bucket}
  endpoints JSON  {options.state_file}

Try, in another terminal:
  .venv/bin/batchplane drop README.md --key incoming/{info.tenant}/word-count/readme.txt
  .venv/bin/batchplane submit sort-large -p input=s3://{info.ingest_bucket}/incoming/{info.tenant}/word-count/readme.txt
  .venv/bin/batchplane watch
  curl -s -H 'Authorization: Tenant local' {info.api_url}/jobs
  aws --endpoint-url {info.aws_endpoint_url} s3 ls s3://{info.artifact_bucket}/outputs/ --recursive

Ctrl-C stops everything."""


if __name__ == "__main__":
    raise SystemExit(main())
