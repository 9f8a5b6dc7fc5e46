"""Cold start: `python -X importtime` of each function's module, against `import boto3` alone.

Each import runs in a fresh interpreter (as a Lambda cold start does) with the layer on sys.path;
the figure is the median of several runs of the cumulative import time of the top-level module.

With --layer, the same imports from a copy of the layer as Lambda gets it: this venv's packages
(boto3 and the layer's requirements) and the batchplane package under python/, every file dated
1980-01-01 as SAM's zip leaves them, and no bytecode written (/opt is read-only). First with no
bytecode, as `sam build` ships the layer (each cold start compiles every module from source), then
compiled as `make build` compiles it (unchecked hash-based .pyc, valid whatever the dates).

    python bench/cold_start.py [--runs 7] [--no-tracer] [--layer]
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


SAM_ZIP_TIME = 315532800  # 1980-01-01T00:00:00Z: SAM writes its zip entries with no date


def import_micros(module: str, path: list[Path], env: dict[str, str], *, site: bool = True) -> int:
    """Cumulative microseconds of importing `module` (and all it imports) in a new interpreter."""
    code = f"import sys; sys.path[:0] = {[str(p) for p in path]!r}; import {module}"
    flags = [] if site else ["-S"]  # -S: nothing from this venv, only what `path` holds
    result = subprocess.run(
        [sys.executable, *flags, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        match = _LINE.match(line)
        # Top-level entries (no indentation) are the imports the statement made itself.
        if match and match.group(3) == " ":
            total += int(match.group(2))
    return total


def deployed(into: Path) -> tuple[Path, Path]:
    """The layer's python/ and the functions' code as Lambda unzips them: packages and batchplane,
    every file dated as SAM's zip dates it. Returns (layer python/, functions/)."""
    python, functions = into / "python", into / "functions"
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")  # sam build ships none
    shutil.copytree(
        sysconfig.get_paths()["purelib"], python, ignore=shutil.ignore_patterns("pip", "pip-*", "__pycache__")
    )
    shutil.copytree(ROOT / "layers" / "core" / "batchplane", python / "batchplane", ignore=no_bytecode)
    for name in FUNCTIONS:
        (functions / name).mkdir(parents=True)
        shutil.copy(ROOT / "functions" / name / "app.py", functions / name / "app.py")
    for directory, _, files in os.walk(into):
        for file in files:
            os.utime(Path(directory) / file, (SAM_ZIP_TIME, SAM_ZIP_TIME))
    return python, functions


def compare_layer(runs: int, env: dict[str, str]) -> None:
    env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}  # /opt and /var/task are read-only on Lambda
    with tempfile.TemporaryDirectory() as tmp:
        python, functions = deployed(Path(tmp))

        def figures() -> dict[str, float]:
            def median(module: str, path: list[Path]) -> float:
                samples = (import_micros(module, path, env, site=False) for _ in range(runs))
                return statistics.median(samples) / 1000

            found = {"import boto3": median("boto3", [python])}
            for name in FUNCTIONS:
                found[f"functions/{name}/app.py"] = median("app", [functions / name, python])
            return found

        stale = figures()
        compileall.compile_dir(
            tmp,
            quiet=1,
            force=True,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled = figures()
    print(f"the layer as Lambda unzips it, {runs} runs each (boto3 comes from the layer too)")
    print(f"{'':<28} {'sam build':>12} {'make build':>12}")
    for name, ms in stale.items():
        print(f"{name:<28} {ms:9.1f} ms {compiled[name]:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-tracer", action="store_true", help="set POWERTOOLS_TRACE_DISABLED=1")
    parser.add_argument("--layer", action="store_true", help="also measure the layer as Lambda gets it")
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
    # Bytecode for our code as for the packages (pip compiled those): what is measured is importing,
    # not compiling, whether or not this shell has PYTHONDONTWRITEBYTECODE set.
    for tree in (layer / "batchplane", ROOT / "functions"):
        compileall.compile_dir(tree, quiet=1, workers=0)

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
    if args.layer:
        compare_layer(args.runs, env)


if __name__ == "__main__":
    main()
