"""A local stack's own files: its state file, and beside it its state directory (the file's path
without `.json`) holding the jobs' output (`jobs/`) and an environment file for the AWS CLI and the
SDKs (`aws.env`). A stack writes only its own and removes only its own.

The state file asked for (default `.local/batchplane-local.json`) is the stack's unless another
stack that is still running wrote it: then this one takes `<name>-<pid>.json` beside it, and says so
in its banner. So the first stack of a checkout is where the CLI looks by default, and every other
one is reached with `--local-file` or by sourcing its `aws.env` (which sets BATCHPLANE_LOCAL_FILE).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from batchplane_tools.state_file import LocalInfo, StateFileError


def running(pid: int | None) -> bool:
    """Whether a process with this id is alive (a stack's pid, as its state file holds it)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def holder(path: Path) -> int | None:
    """The pid of the running stack that wrote `path`; None if none does."""
    try:
        pid = LocalInfo.load(path).pid
    except StateFileError:
        return None
    return pid if running(pid) else None


@dataclass(frozen=True)
class StackFiles:
    state_file: Path
    pid: int

    @property
    def directory(self) -> Path:
        return self.state_file.with_suffix("")

    @property
    def jobs(self) -> Path:
        """The jobs' output files, one per log stream (`<definition>/default/<task id>`)."""
        return self.directory / "jobs"

    @property
    def env_file(self) -> Path:
        return self.directory / "aws.env"

    @classmethod
    def claim(cls, requested: Path, pid: int | None = None) -> StackFiles:
        """The files of the stack of process `pid` (this one): `requested`, unless a running stack
        holds it."""
        pid = os.getpid() if pid is None else pid
        other = holder(requested)
        if other is None or other == pid:
            return cls(requested, pid)
        return cls(requested.with_name(f"{requested.stem}-{pid}{requested.suffix}"), pid)

    def write_env_file(self, info: LocalInfo) -> None:
        """`source` it: the AWS CLI, the SDKs and `batchplane` then reach this stack, with
        credentials and its region whatever the shell had configured."""
        assert info.aws_endpoint_url is not None
        values = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": info.region,
            "AWS_REGION": info.region,
            "AWS_ENDPOINT_URL": info.aws_endpoint_url,
            "BATCHPLANE_LOCAL_FILE": str(self.state_file.resolve()),
            "BATCHPLANE_INGEST_BUCKET": info.ingest_bucket or "",
            "BATCHPLANE_ARTIFACT_BUCKET": info.artifact_bucket or "",
        }
        lines = [
            f"# batchplane local (pid {self.pid}): source this file (. {self.env_file})",
            # A profile's or a session's credentials would otherwise go along (or win, for some tools).
            "unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN",
            *(f"export {name}={shlex.quote(value)}" for name, value in values.items()),
        ]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def release(self) -> None:
        """Removes the state directory, and the state file if this stack still holds it."""
        shutil.rmtree(self.directory, ignore_errors=True)
        with contextlib.suppress(OSError, ValueError):
            written = json.loads(self.state_file.read_text(encoding="utf-8"))
            if isinstance(written, dict) and written.get("pid") == self.pid:
                self.state_file.unlink(missing_ok=True)


def running_stacks(default: Path) -> list[Path]:
    """The state files of running stacks: `default` and its `<name>-<pid>.json` siblings."""
    found = [default] if holder(default) is not None else []
    for sibling in sorted(default.parent.glob(f"{default.stem}-*{default.suffix}")):
        if holder(sibling) is not None:
            found.append(sibling)
    return found
