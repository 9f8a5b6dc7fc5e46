"""Cold start: `python -X importtime` of each function's module, against `import boto3` alone.

Each import runs in a fresh interpreter (as a Lambda cold start does) with the layer on sys.path;
the figure is the median of several runs of the cumulative import time of the top-level module.

    python bench/cold_start.py [--runs 7] [--no-tracer]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def import_micros(module: str, path: list[Path], env: dict[str, str]) -> int:
    """Cumulative microseconds of importing `module` (and all it imports) in a new interpreter."""
    code = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}; import {module}"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env, check=True
    )
    total = 0
    for line in result.stderr.splitlines():
        match = _LINE.match(line)
        # Top-level entries (no indentation) are the imports the statement made itself.
        if match and match.group(3) == " ":
            total += int(match.group(2))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-tracer", action="store_true", help="set POWERTOOLS_TRACE_DISABLED=1")
    args = parser.parse_args()
    # As template.yaml's Globals set them: PYDANTIC_DISABLE_PLUGINS skips pydantic's entry-point scan.
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "batchplane",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    }
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    if args.no_tracer:
        env["POWERTOOLS_TRACE_DISABLED"] = "1"
    layer = ROOT / "layers" / "core"

    def median(module: str, path: list[Path]) -> float:
        return statistics.median(import_micros(module, path, env) for _ in range(args.runs)) / 1000

    boto3_ms = median("boto3", [])
    print(
        f"python {sys.version.split()[0]}, {args.runs} runs each, tracer {'off' if args.no_tracer else 'on'}"
    )
    print(f"{'import boto3':<28} {boto3_ms:8.1f} ms   1.00x")
    for name in FUNCTIONS:
        ms = median("app", [ROOT / "functions" / name, layer])
        print(f"{'functions/' + name + '/app.py':<28} {ms:8.1f} ms   {ms / boto3_ms:.2f}x")


if __name__ == "__main__":
    main()
