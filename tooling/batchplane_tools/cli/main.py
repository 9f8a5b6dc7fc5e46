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

from batchplane_tools.cli import commands
from batchplane_tools.paths import STATE_FILE


def _local_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    local = subparsers.add_parser(
        "local",
        help="run batchplane on this machine: embedded AWS (moto) and a local Batch emulator",
        description="Run the production handlers on an embedded AWS and a Batch emulator that runs jobs "
        "as local processes. Ctrl-C stops everything.",
    )
    local.add_argument("--api-port", type=int, default=8080, help="REST API port (default 8080; 0: any)")
    local.add_argument("--aws-port", type=int, default=5000, help="embedded AWS endpoint port (default 5000)")
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
    local.add_argument("--seed", type=int, help="seed for the chaos, for repeatable runs")
    local.add_argument(
        "--sweep-interval", type=float, help="seconds between sweeps (default: the template's)"
    )
    local.add_argument(
        "--state-file",
        type=Path,
        default=STATE_FILE,
        help="where the endpoints are written as JSON once ready (default .local/batchplane-local.json)",
    )


def run_local(args: argparse.Namespace) -> int:
    from batchplane_tools.local.stack import LocalOptions, LocalStack

    if not 0.0 <= args.spot_interruption_rate <= 1.0:
        print("batchplane: --spot-interruption-rate must be between 0 and 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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
    )
    if args.policy:
        options.policy = args.policy.resolve()
    started = time.perf_counter()
    stack = LocalStack(options)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        info = stack.start()
    except OSError as error:
        stack.stop()
        print(f"batchplane: cannot start the local stack: {error}", file=sys.stderr)
        return 1
    ready = time.perf_counter() - started
    print(
        f"""
batchplane local is ready ({ready:.1f} s)
  REST API        {info.api_url}      (tenant from `Authorization: Tenant <name>`, default "local")
  AWS endpoint    {info.aws_endpoint_url}      (moto: DynamoDB, S3, SQS, SNS, EventBridge)
  Batch endpoint  {info.batch_endpoint_url}  ({options.workers} job slots, Spot interruption rate \
{options.spot_interruption_rate})
  ingest bucket   {info.ingest_bucket}
  endpoints JSON  {options.state_file}

Try, in another terminal:
  .venv/bin/batchplane submit word-count -p input=s3://{info.ingest_bucket}/incoming/word-count/notes.txt
  .venv/bin/batchplane drop README.md --prefix incoming/word-count/ --key incoming/word-count/readme.txt
  .venv/bin/batchplane watch
  curl -s -H 'Authorization: Tenant local' {info.api_url}/jobs
  aws --endpoint-url {info.aws_endpoint_url} s3 ls s3://{info.artifact_bucket}/outputs/ --recursive

Ctrl-C stops everything.""",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        print("\nstopping...", flush=True)
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batchplane", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _local_parser(subparsers)
    commands.register(subparsers)
    args = parser.parse_args(argv)
    if args.command == "local":
        return run_local(args)
    return commands.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
