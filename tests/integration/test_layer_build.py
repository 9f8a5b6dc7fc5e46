"""What `make build` puts in the Lambda layer: the runtime package, its policy and its dependencies,
and no tooling. Built for real with `sam build CoreLayer` in the SAM environment (about 10 s)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "layers" / "core" / "batchplane"
TOOLING = ROOT / "tooling" / "batchplane_tools"


def _sam() -> Path:
    python = os.environ.get("BATCHPLANE_SAM_PYTHON", str(ROOT / ".venv-sam" / "bin" / "python"))
    sam = Path(python).parent / "sam"
    if not sam.exists():
        pytest.fail(f"no SAM CLI at {sam}: run `make sam-env` (make test does)")
    return sam


def _python312_dir() -> str:
    """Where a python3.12 that runs lives, as the Makefile finds it: pyenv's, else PATH's (a pyenv
    shim for a version that is not selected is on PATH but does not run)."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.12.*/bin/python3.12"))
    on_path = shutil.which("python3.12")
    for candidate in [*map(str, candidates), *([on_path] if on_path else [])]:
        check = [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]
        if subprocess.run(check, capture_output=True, check=False, timeout=30).returncode == 0:
            return str(Path(candidate).parent)
    pytest.fail("sam build needs python3.12 (pyenv's or on PATH)")


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = tmp_path_factory.mktemp("sam-build")
    # --no-cached: samconfig.toml caches builds, which would leave ~50 MB of dependencies under
    # .aws-sam/deps in the checkout for every fresh --build-dir.
    command = [str(_sam()), "build", "CoreLayer", "--no-cached", "--template", str(ROOT / "template.yaml")]
    done = subprocess.run(
        [*command, "--build-dir", str(build)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "SAM_CLI_TELEMETRY": "0",
            "PATH": f"{_python312_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return build / "CoreLayer" / "python"


def _modules(top: Path) -> set[str]:
    return {str(p.relative_to(top.parent)) for p in top.rglob("*.py")}


def test_the_layer_holds_the_runtime_package_exactly(layer: Path) -> None:
    # Given the layer as sam build makes it
    # Then its batchplane package is the runtime's, module for module
    assert _modules(layer / "batchplane") == _modules(RUNTIME)
    assert (layer / "policy.yaml").is_file()
    assert (layer / "prices.json").is_file()  # the shipped price table (policy/cost.py)


def test_the_layer_holds_no_tooling(layer: Path) -> None:
    # Given the layer as sam build makes it
    shipped = {str(p.relative_to(layer)) for p in layer.rglob("*.py")}
    tooling = {p.name for p in TOOLING.iterdir()}

    # Then neither the tooling package nor any of its modules is in it
    assert not (layer / "batchplane_tools").exists()
    assert not any(
        s.startswith(("batchplane/local", "batchplane/cli", "batchplane/emulator")) for s in shipped
    )
    assert not [
        s for s in shipped if s.startswith("batchplane/") and Path(s).name in tooling - {"__init__.py"}
    ]
