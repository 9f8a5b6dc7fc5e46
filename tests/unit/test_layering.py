"""Imports point one way: handlers -> api / wiring -> adapters -> service -> domain.

The runtime package `batchplane` is what the Lambda layer ships. Its sub-packages are ranked; a
module may import its own sub-package and any lower rank, never a higher one, and never the tooling
(`batchplane_tools`). The domain (models, policy, lifecycle) imports no AWS SDK.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "layers" / "core" / "batchplane"

# Lowest first. Equal ranks may not import each other: only their own package, or lower.
RANK = {
    "": 0,  # batchplane/__init__.py: the version
    "errors": 0,
    "models": 1,
    "observability": 1,
    "settings": 2,
    "failed_records": 2,  # what a function gives up on, logged (observability) with its id and reason
    "policy": 2,
    "lifecycle": 3,
    "service": 4,  # use cases and their ports (the types and errors the ports speak in)
    "adapters": 5,  # implement the service's ports: the only code that talks to AWS
    "wiring": 6,  # the composition root: builds the ports from settings and adapters
    "api": 7,  # the REST API function's routes, schemas and error mapping
}
DOMAIN = {"models", "policy", "lifecycle"}
AWS_SDK = ("boto3", "botocore", "mypy_boto3", "aioboto3")


def _part(module: str) -> str | None:
    """batchplane.service.jobs -> "service"; batchplane -> ""; anything else -> None."""
    if module == "batchplane":
        return ""
    if module.startswith("batchplane."):
        return module.split(".")[1]
    return None


def _imports(path: Path, root: Path = RUNTIME) -> Iterator[tuple[int, str]]:
    """Every module the file imports, absolute: `from batchplane import wiring` names
    batchplane.wiring, and a relative import is resolved against the file's package."""
    package = ".".join(path.relative_to(root.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                yield node.lineno, base
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _violations(path: Path, root: Path = RUNTIME) -> list[str]:
    """The imports of `path`, a module of the runtime package at `root`, that point up or sideways."""
    own = _part_of(path, root)
    wrong = []
    for line, module in _imports(path, root):
        if module.split(".")[0] == "batchplane_tools":
            wrong.append(f"line {line}: {module} (the tooling never ships in the layer)")
            continue
        target = _part(module)
        if target is None or target == own or target not in RANK:
            continue  # not ours, our own part, or a name imported from batchplane/__init__.py
        if RANK[target] >= RANK[own]:
            wrong.append(f"line {line}: {module} ({target}, rank {RANK[target]}, is not below {own})")
    return sorted(set(wrong))


def _runtime_modules() -> list[Path]:
    return sorted(RUNTIME.rglob("*.py"))


def _part_of(path: Path, root: Path = RUNTIME) -> str:
    relative = path.relative_to(root)
    return (
        ""
        if relative.name == "__init__.py" and relative.parent == Path()
        else relative.parts[0].removesuffix(".py")
    )


def test_every_runtime_package_has_a_rank() -> None:
    # Given the runtime's sub-packages and top-level modules
    parts = {_part_of(path) for path in _runtime_modules()}

    # Then each is placed in the order, so a new one cannot slip past the check
    assert parts <= set(RANK), f"rank these in tests/unit/test_layering.py: {sorted(parts - set(RANK))}"


@pytest.mark.parametrize("path", _runtime_modules(), ids=lambda p: str(p.relative_to(RUNTIME)))
def test_a_runtime_module_imports_only_its_own_layer_or_lower(path: Path) -> None:
    # Given a module of the runtime package in its layer
    # When its imports are read
    wrong = _violations(path)

    # Then none points up (or sideways)
    assert not wrong, f"{path.relative_to(ROOT)} imports upward:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "path",
    [p for p in _runtime_modules() if _part_of(p) in DOMAIN],
    ids=lambda p: str(p.relative_to(RUNTIME)),
)
def test_the_domain_imports_no_aws_sdk(path: Path) -> None:
    # Given a domain module; Then it is tested with plain values, no AWS client behind it
    found = [f"line {line}: {m}" for line, m in _imports(path) if m.split(".")[0] in AWS_SDK]
    assert not found, f"{path.relative_to(ROOT)}: " + ", ".join(found)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("from batchplane.adapters.store import DynamoJobStore\n", "service/bad.py"),
        ("from batchplane import wiring\n", "service/bad.py"),
        ("from ..adapters import store\n", "service/bad.py"),
        ("import batchplane.api.routes\n", "adapters/bad.py"),
        ("from batchplane_tools.fixtures import load_event\n", "models/bad.py"),
        ("from batchplane.service.ports import Page\n", "lifecycle/bad.py"),
    ],
)
def test_the_check_catches_an_upward_import(source: str, name: str, tmp_path: Path) -> None:
    # Given a module that imports upward, in each form an import can take
    copy = tmp_path / "batchplane" / name
    copy.parent.mkdir(parents=True)
    copy.write_text(source, encoding="utf-8")

    # When the check reads it as the module of its part
    found = _violations(copy, tmp_path / "batchplane")

    # Then it is refused
    assert found, source


def test_the_check_lets_a_downward_import_pass(tmp_path: Path) -> None:
    # Given a service module importing the domain and its own ports
    copy = tmp_path / "batchplane" / "service" / "ok.py"
    copy.parent.mkdir(parents=True)
    copy.write_text(
        "from batchplane.models.job import Job\nfrom .ports import Ports\nfrom batchplane import errors\n",
        encoding="utf-8",
    )

    # Then nothing is refused
    assert _violations(copy, tmp_path / "batchplane") == []
