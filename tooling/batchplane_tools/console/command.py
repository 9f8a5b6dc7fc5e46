"""`batchplane console`: the console's pages on localhost for a deployed API (`--api URL`), each
request signed with SigV4 with the user's default AWS credentials; without `--api`, for the running
local stack (which `batchplane local` serves itself too)."""

from __future__ import annotations

import argparse
import sys
import threading

from batchplane_tools.cli.client import SigV4Signer
from batchplane_tools.cli.errors import CliError
from batchplane_tools.cli.targets import load_local, local_file_of, region_for
from batchplane_tools.console.server import ConsoleServer, Upstream


def upstream_of(args: argparse.Namespace) -> Upstream:
    """The API the console reads: `--api` signed (credentials checked now, not at the first page),
    else the local stack's, from its state file."""
    if args.api:
        signer = SigV4Signer(region_for(args, args.api))
        signer.credentials()
        return Upstream(args.api, signer)
    return Upstream(load_local(local_file_of(args)).api_url)


def run(args: argparse.Namespace, stopping: threading.Event) -> int:
    try:
        upstream = upstream_of(args)
    except CliError as error:
        print(f"batchplane: {error}", file=sys.stderr)
        return error.exit_code
    try:
        console = ConsoleServer(args.host, args.port, upstream)
    except OSError as error:
        print(f"batchplane: cannot serve the console on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    print(
        f"batchplane console  {console.url}  ->  {upstream.base_url} ({upstream.mode})  Ctrl-C stops it",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        console.stop()
    return 0
