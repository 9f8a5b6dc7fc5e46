"""Starting `batchplane local` as a separate process, as `make local` does (for tests and benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from batchplane_tools.paths import ROOT


def spawn_local(
    state_file: Path, *args: str, output: IO[bytes] | int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`batchplane local` on free ports, writing its endpoints to `state_file` once ready.

    It runs in its own session, so a signal to its group reaches every job process it started, and
    without any AWS_ENDPOINT_URL* of the caller's: the stack sets its own.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batchplane_tools.cli.main",
            "local",
            "--api-port",
            "0",
            "--aws-port",
            "0",
            "--console-port",
            "0",
            "--state-file",
            str(state_file),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        start_new_session=True,
    )
