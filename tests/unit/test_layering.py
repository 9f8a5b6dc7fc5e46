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


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def _runtime_modules() -> list[Path]:
    return sorted(RUNTIME.rglob("*.py"))


def _part_of(path: Path) -> str:
    relative = path.relative_to(RUNTIME)
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
    own = _part_of(path)
    wrong = []

    # When its imports are read
    for line, module in _imports(path):
        if module.split(".")[0] == "batchplane_tools":
            wrong.append(f"line {line}: {module} (the tooling never ships in the layer)")
            continue
        target = _part(module)
        if target is None or target == own:
            continue
        if RANK[target] >= RANK[own]:
            wrong.append(f"line {line}: {module} ({target}, rank {RANK[target]}, is not below {own})")

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


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    # Given a service module that imports an adapter
    module = tmp_path / "bad.py"
    module.write_text("from batchplane.adapters.store import DynamoJobStore\n", encoding="utf-8")

    # When its imports are ranked
    ranked = [(m, RANK[t]) for _, m in _imports(module) if (t := _part(m)) is not None]

    # Then the adapter ranks above the service, which the check refuses
    assert ranked == [("batchplane.adapters.store", RANK["adapters"])]
    assert RANK["adapters"] > RANK["service"]
