"""A job's container as local processes: its command started in a process group of its own, the
group's memory read from /proc, signals to the group, and the exit code as Docker reports it.

Linux only, and only once a Supervisor is made: nothing here reads /proc at import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from batchplane_tools.emulator.job import Job

logger = logging.getLogger(__name__)

BASE_ENVIRONMENT = ("PATH", "HOME", "LANG")
LOST_WAIT_STATUS = 255 << 8  # exit 255, for a process whose status someone else reaped
REAP_SECONDS = 5.0


def check_platform() -> None:
    """Raises RuntimeError unless this is Linux, whose /proc the supervision reads."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError(
            "the local Batch emulator supervises job processes through Linux's /proc; "
            f"this is {sys.platform}: run batchplane local on Linux (or in WSL2 / a Linux container)"
        )


class Supervisor:
    """Starts, watches, signals and reaps the jobs' process groups (each group is named by its
    leader's pid, the job's main process)."""

    def __init__(
        self,
        *,
        python: str,
        cwd: Path | None,
        job_environment: dict[str, str],
        log_dir: Path | None = None,
        keep_logs: int | None = None,
    ) -> None:
        check_platform()
        try:
            with open("/proc/self/cmdline", "rb") as handle:
                self._own_cmdline = handle.read()
        except OSError as error:
            raise RuntimeError(
                f"the local Batch emulator supervises job processes through /proc, unreadable here: {error}"
            ) from error
        self._python = python
        self._cwd = cwd
        self._job_environment = dict(job_environment)
        self._given_log_dir = log_dir
        self._keep_logs = keep_logs
        self._ended_logs: deque[Path] = deque()
        self.log_dir: Path | None = None

    def make_log_dir(self) -> Path:
        """Where the jobs' output goes, one file per log stream: the directory given, or a temporary
        one of the emulator's own, removed by `remove_log_dir`."""
        if self._given_log_dir is not None:
            self._given_log_dir.mkdir(parents=True, exist_ok=True)
            self.log_dir = self._given_log_dir
        else:
            self.log_dir = Path(tempfile.mkdtemp(prefix="batchplane-batch-"))
        return self.log_dir

    def remove_log_dir(self) -> None:
        """Removes the temporary log directory made by `make_log_dir`; a given one is its owner's."""
        if self.log_dir is not None and self._given_log_dir is None:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def retire_log(self, log_path: Path) -> None:
        """An ended job's log: kept among the newest `keep_logs`, the oldest beyond them removed."""
        if self._keep_logs is None:
            return
        self._ended_logs.append(log_path)
        while len(self._ended_logs) > self._keep_logs:
            oldest = self._ended_logs.popleft()
            oldest.unlink(missing_ok=True)
            # The stream's directories (<definition>/default/) go once empty.
            with contextlib.suppress(OSError):
                oldest.parent.rmdir()
                oldest.parent.parent.rmdir()

    def spawn(self, job: Job, stream: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Starts the job's command in its own process group (the container) with a clean environment,
        stdout and stderr going to the stream's log file. Raises OSError if it cannot start."""
        assert self.log_dir is not None
        argv = list(job.command)
        if argv and argv[0] == "python":  # the emulator's own interpreter, with the project installed
            argv[0] = self._python
        log_path = self.log_dir / stream
        if not argv:
            raise OSError("the container has no command")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=self._cwd,
                env=self._environment(job),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log_path

    def _environment(self, job: Job) -> dict[str, str]:
        environment = {name: os.environ[name] for name in BASE_ENVIRONMENT if name in os.environ}
        environment.update(self._job_environment)
        environment.update(job.environment)
        environment.update(
            AWS_BATCH_JOB_ID=job.job_id,
            AWS_BATCH_JOB_ATTEMPT="1",
            AWS_BATCH_JQ_NAME=job.queue.name,
            AWS_BATCH_CE_NAME=job.compute_environment,
        )
        if job.array_index is not None:  # an array job's child learns its place
            environment["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
        return environment

    @staticmethod
    def terminate(pgid: int) -> None:
        _signal_group(pgid, signal.SIGTERM)

    @staticmethod
    def kill(pgid: int) -> None:
        _signal_group(pgid, signal.SIGKILL)

    @staticmethod
    def poll(pid: int) -> int | None:
        """The main process's wait status once it has ended (reaping it), else None."""
        try:
            reaped, wait_status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the exit status is lost
            return LOST_WAIT_STATUS
        return wait_status if reaped == pid else None

    @staticmethod
    def reap(pid: int) -> int | None:
        """A killed process's wait status; None if it is gone already or outlives the wait."""
        deadline = time.monotonic() + REAP_SECONDS
        while time.monotonic() < deadline:
            try:
                reaped, wait_status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if reaped == pid:
                return wait_status
            time.sleep(0.005)
        logger.warning("batch emulator: process %s survived SIGKILL", pid)
        return None

    @staticmethod
    def collect(process: subprocess.Popen[bytes], wait_status: int) -> int:
        """The container's main process ended: the rest of its group goes with it, as in a container.
        Returns the exit code as Docker reports it: the exit status, or 128 + the killing signal."""
        _signal_group(process.pid, signal.SIGKILL)
        code = process.returncode = os.waitstatus_to_exitcode(wait_status)  # reaped here, not by Popen
        return 128 - code if code < 0 else code

    def memory_kib(self, pgids: set[int]) -> dict[int, int]:
        """Per job (its main process id, which is its process group): the larger of the summed VmRSS of
        its process tree and one process's peak (VmHWM).

        A cgroup limit applies to the sum; one process's peak over the limit would have been killed
        even if it fell between two polls.
        """
        usage: dict[int, int] = {}
        for pgid in pgids:
            rss = peak = 0
            for pid in _process_tree(pgid):
                try:
                    # Between fork and exec a job's process is still a copy of this one, with its
                    # memory: not the job's yet.
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        if handle.read() == self._own_cmdline:
                            continue
                    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
                        for line in handle:
                            if line.startswith("VmRSS:"):
                                rss += int(line.split()[1])
                            elif line.startswith("VmHWM:"):
                                peak = max(peak, int(line.split()[1]))
                except (OSError, ValueError, IndexError):
                    continue  # the process ended meanwhile
            usage[pgid] = max(rss, peak)
        return usage


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _process_tree(pid: int) -> list[int]:
    """A process and its descendants, from /proc/<pid>/task/<tid>/children (no scan of all of /proc)."""
    found, index = [pid], 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                    found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue  # it ended meanwhile
    return found
