"""One source for the runtime's dependencies: the layer installs what pyproject declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in lines]
    return {req.name.lower(): req for req in parsed}


def _layer_requirements() -> dict[str, Requirement]:
    text = (ROOT / "layers" / "core" / "requirements.txt").read_text(encoding="utf-8")
    return _requirements([s for line in text.splitlines() if (s := line.split("#", 1)[0].strip())])


def _project_dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return _requirements(project["dependencies"])


def test_the_layer_requirements_are_the_projects_dependencies() -> None:
    # Given the layer's requirements.txt and pyproject's runtime dependencies
    layer, project = _layer_requirements(), _project_dependencies()

    # Then they name the same packages, with the same extras and version ranges
    assert sorted(layer) == sorted(project)
    for name, req in layer.items():
        assert (req.extras, req.specifier) == (project[name].extras, project[name].specifier), name


def test_the_tests_run_a_pydantic_the_layer_allows() -> None:
    # Given the pydantic installed here (the tests' environment)
    from importlib.metadata import version

    installed = version("pydantic")

    # Then the layer's range admits it: the tests run what Lambda runs
    assert _layer_requirements()["pydantic"].specifier.contains(installed), installed
