"""The local stack's state file: what `batchplane local` writes once ready, and what the CLI,
`batchplane_tools.invoke` and the tests read to find it. Its JSON fields are a README contract."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


class StateFileError(Exception):
    """The state file cannot be read as a local stack's."""


class NoStateFile(StateFileError):
    """No local stack has written this file (none is running, or it runs with another file)."""

    def __init__(self, path: Path):
        super().__init__(f"no local stack found ({path})")
        self.path = path


_TYPES: dict[str, type] = {"pid": int, "outputs": dict, "function_environment": dict}


@dataclass(frozen=True)
class LocalInfo:
    """Where a running local stack's endpoints and resources are."""

    api_url: str
    console_url: str | None = None  # the web console, proxying /api/* to api_url
    aws_endpoint_url: str | None = None
    batch_endpoint_url: str | None = None
    region: str = "us-east-1"
    tenant: str = "local"
    ingest_bucket: str | None = None
    artifact_bucket: str | None = None
    jobs_table: str | None = None
    alert_topic_arn: str | None = None
    event_bus_name: str | None = None
    pid: int | None = None
    # This stack's own files: the AWS CLI/SDK environment to source, and the jobs' output files.
    env_file: str | None = None
    jobs_dir: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    # The environment every function runs with there, so `batchplane_tools.invoke` can run one.
    function_environment: dict[str, str] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        """Whole or not at all: a reader that waits for the file never finds it half written (it is
        written beside, then renamed over, which POSIX makes atomic)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(asdict(self), indent=2) + "\n")
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> LocalInfo:
        """The file's fields; an empty or missing optional one takes its default."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NoStateFile(path) from None
        except OSError as error:
            raise StateFileError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            doc: Any = json.loads(text)
        except ValueError as error:
            raise StateFileError(f"{path} is not a local stack file: {error}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("api_url"), str):
            raise StateFileError(f"{path} is not a local stack file: no api_url")
        known = {f.name for f in fields(cls)}
        # A field of the wrong type, or empty, is left at its default rather than trusted.
        values: dict[str, Any] = {
            name: value
            for name, value in doc.items()
            if name in known and value not in (None, "") and isinstance(value, _TYPES.get(name, str))
        }
        return cls(**values)
