"""Cold start: `python -X importtime` of each function's module, against `import boto3` alone.

Each import runs in a fresh interpreter (as a Lambda cold start does) with the layer on sys.path;
the figure is the median of several rounds of the cumulative import time of the top-level module,
and the ratio the median of the rounds' ratios (boto3 and every function are imported in each round).

With --layer, the same imports from a copy of the layer as Lambda gets it: this venv's packages
(boto3 and the layer's requirements) and the batchplane package under python/, every file dated
1980-01-01 as SAM's zip leaves them, and no bytecode written (/opt is read-only). First with no
bytecode, as `sam build` ships the layer (each cold start compiles every module from source), then
compiled as `make build` compiles it (unchecked hash-based .pyc, valid whatever the dates).

    python bench/cold_start.py [--runs 7] [--no-tracer] [--layer] [--what-if-lazy-resolvers]
"""

from __future__ import annotations

import argparse
import ast
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

        imports = {"import boto3": ("boto3", [python])} | {
            f"functions/{name}/app.py": ("app", [functions / name, python]) for name in FUNCTIONS
        }

        def figures() -> dict[str, float]:
            samples = in_rounds(imports, runs, env, site=False)
            return {label: statistics.median(runs) / 1000 for label, runs in samples.items()}

        stale = figures()
        compileall.compile_dir(
            tmp,
            quiet=1,
            force=True,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled = figures()
    print(f"the layer as Lambda unzips it, {runs} rounds (boto3 comes from the layer too)")
    print(f"{'':<28} {'sam build':>12} {'make build':>12}")
    for name, ms in stale.items():
        print(f"{name:<28} {ms:9.1f} ms {compiled[name]:9.1f} ms")


def in_rounds(
    imports: dict[str, tuple[str, list[Path]]], runs: int, env: dict[str, str], *, site: bool = True
) -> dict[str, list[int]]:
    """Microseconds of each import, round by round (boto3 first in each), so that the machine's drift
    over a run (here it moves boto3's figure by 15%) falls on both sides of every ratio."""
    samples: dict[str, list[int]] = {label: [] for label in imports}
    for _ in range(runs):
        for label, (module, path) in imports.items():
            samples[label].append(import_micros(module, path, env, site=site))
    return samples


def report(samples: dict[str, list[int]]) -> None:
    """Median time of each import, and the median of its rounds' ratios to boto3's."""
    boto3_runs = samples["import boto3"]
    print(f"{'':<28} {'median':>11}   {'ratio':>5}  {'(rounds: min-max)'}")
    for label, runs in samples.items():
        ratios = [run / boto3 for run, boto3 in zip(runs, boto3_runs, strict=True)]
        print(
            f"{label:<28} {statistics.median(runs) / 1000:8.1f} ms   {statistics.median(ratios):.2f}x"
            f"  ({min(ratios):.2f}-{max(ratios):.2f})"
        )


def lazy_resolvers(into: Path) -> Path:
    """A copy of this venv's Powertools whose event_handler/__init__.py imports each resolver when it is
    first asked for, instead of all of them (AppSync's brings asyncio): what powertools-lambda-python
    #8405 did for the parser's envelopes. A what-if, measured beside the real thing; never shipped."""
    site = Path(sysconfig.get_paths()["purelib"])
    shutil.copytree(site / "aws_lambda_powertools", into / "aws_lambda_powertools")
    init = into / "aws_lambda_powertools" / "event_handler" / "__init__.py"
    where = {
        alias.asname or alias.name: node.module
        for node in ast.parse(init.read_text()).body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    init.write_text(
        "import importlib\n\n"
        f"_WHERE = {where!r}\n"
        "__all__ = list(_WHERE)\n\n\n"
        "def __getattr__(name):\n"
        "    if name not in _WHERE:\n"
        "        raise AttributeError(name)\n"
        "    return getattr(importlib.import_module(_WHERE[name]), name)\n"
    )
    compileall.compile_dir(into, quiet=1, workers=0)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-tracer", action="store_true", help="set POWERTOOLS_TRACE_DISABLED=1")
    parser.add_argument("--layer", action="store_true", help="also measure the layer as Lambda gets it")
    parser.add_argument(
        "--what-if-lazy-resolvers",
        action="store_true",
        help="also measure the API with Powertools' event_handler importing its resolvers lazily",
    )
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

    imports = {"import boto3": ("boto3", [])} | {
        f"functions/{name}/app.py": ("app", [ROOT / "functions" / name, layer]) for name in FUNCTIONS
    }
    print(f"python {sys.version.split()[0]}, {args.runs} rounds, tracer {'off' if args.no_tracer else 'on'}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.what_if_lazy_resolvers:
            imports["api, if resolvers were lazy"] = (
                "app",
                [lazy_resolvers(Path(tmp)), ROOT / "functions" / "api", layer],
            )
        report(in_rounds(imports, args.runs, env))
    if args.layer:
        compare_layer(args.runs, env)


if __name__ == "__main__":
    main()
