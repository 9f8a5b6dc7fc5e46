"""Loading the Lambda functions' handlers in-process, as the Lambda runtime would."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from batchplane_tools.paths import FUNCTIONS_DIR


def function_names(functions_dir: Path = FUNCTIONS_DIR) -> list[str]:
    """The functions under functions/, each a directory with an app.py."""
    return sorted(p.name for p in functions_dir.iterdir() if (p / "app.py").exists())


def load_function(name: str, functions_dir: Path = FUNCTIONS_DIR) -> ModuleType:
    """functions/<name>/app.py, imported once, each under its own module name."""
    module_name = f"function_{name.replace('-', '_')}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, functions_dir / name / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no function {name} under {functions_dir}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that Powertools reads."""

    function_name: str = "batchplane-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:batchplane-local"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
