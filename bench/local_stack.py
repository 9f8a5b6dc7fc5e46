"""`batchplane local`: time to ready, and end-to-end throughput of short jobs against the bare workers.

Starts `batchplane local --workers 4` as `make local` does, submits N word-count jobs over HTTP and
waits for all to succeed; then runs the same N worker commands directly, 4 processes at a time,
against the same embedded AWS. The ratio says what the control plane costs on top of the work.

    python bench/local_stack.py [--jobs 200] [--workers 4]
    python bench/local_stack.py --starts 6 --jobs 0    # time to ready only: six fresh starts

Time to ready is from starting the process (as `make local` does, its imports included) until the
state file is written, which is when the banner prints.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from batchplane_tools.process import spawn_local

ROOT = Path(__file__).resolve().parents[1]


def call(api: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        api + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": "Tenant bench", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def start(workers: int) -> tuple[subprocess.Popen[bytes], Path, float]:
    """A fresh `batchplane local`, its state file, and the seconds it took to be ready."""
    state = Path(tempfile.mkdtemp()) / "local.json"
    started = time.perf_counter()
    process = spawn_local(state, "--workers", str(workers), "--sweep-interval", "3600")
    while not state.exists():
        if process.poll() is not None:
            raise SystemExit(f"batchplane local exited {process.returncode}")
        time.sleep(0.02)
    return process, state, time.perf_counter() - started


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs for the throughput run (0: none)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--starts", type=int, default=1, help="fresh starts timed to ready")
    args = parser.parse_args()
    readies = []
    for _ in range(args.starts - 1):
        process, _state, ready = start(args.workers)
        stop(process)
        readies.append(ready)
    process, state, ready = start(args.workers)
    readies.append(ready)
    ordered = sorted(readies)
    print(
        f"batchplane local: ready in {statistics.median(readies):.2f} s (median of {len(readies)} starts; "
        f"{ordered[0]:.2f}-{ordered[-1]:.2f} s)",
        flush=True,
    )
    if args.jobs <= 0:
        stop(process)
        return
    try:
        info = json.loads(state.read_text())
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=info["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        # Under the tenant's own prefix (the policy's input sources), outside the file-drop rules'.
        key = "incoming/bench/input.txt"
        uri = f"s3://{info['ingest_bucket']}/{key}"
        s3.put_object(Bucket=info["ingest_bucket"], Key=key, Body=b"a b c\nd e\n" * 100)

        api = info["api_url"]
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(
                pool.map(
                    lambda _: call(
                        api, "POST", "/jobs", {"job_type": "word-count", "parameters": {"input": uri}}
                    )["job_id"],
                    range(args.jobs),
                )
            )
        pending = set(ids)
        while pending:
            page = call(api, "GET", "/jobs?status=SUCCEEDED&limit=200")
            done = {j["job_id"] for j in page["jobs"]}
            failed = call(api, "GET", "/jobs?status=FAILED&limit=200")["jobs"]
            if failed:
                raise SystemExit(f"{len(failed)} jobs failed: {failed[0]['history'][-1]}")
            pending -= done
            if pending:
                # Once a second, as `batchplane watch` does: the watcher's queries (a page of up to
                # 200 whole jobs) are load on the stack too, and not part of the work measured.
                time.sleep(1.0)
        stack_seconds = time.perf_counter() - started

        job_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")},
            "AWS_ENDPOINT_URL": info["aws_endpoint_url"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

        def direct(n: int) -> int:
            run_env = {**job_env, "BATCHPLANE_OUTPUT_PREFIX": f"s3://{info['artifact_bucket']}/direct/{n}/"}
            return subprocess.run(
                [sys.executable, "-m", "workers.word_count", "--input", uri, "--mode", "both"],
                cwd=ROOT,
                env=run_env,
                capture_output=True,
                check=False,
            ).returncode

        started = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as pool:
            codes = list(pool.map(direct, range(args.jobs)))
        direct_seconds = time.perf_counter() - started
        assert codes == [0] * args.jobs, codes
    finally:
        stop(process)

    stack_rate, direct_rate = args.jobs / stack_seconds, args.jobs / direct_seconds
    print(
        f"  {args.jobs} word-count jobs over HTTP, {args.workers} job slots: {stack_seconds:.1f} s, "
        f"{stack_rate:.1f} jobs/s"
    )
    print(
        f"  the same {args.jobs} worker commands, {args.workers} processes at a time: "
        f"{direct_seconds:.1f} s, {direct_rate:.1f} jobs/s"
    )
    print(f"  ratio: {stack_rate / direct_rate:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
