"""The real local stack, as `make local` runs it: `batchplane local` in a subprocess, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.process import spawn_local
from tests.support import eventually


@dataclass
class Local:
    process: subprocess.Popen[bytes]
    info: dict[str, Any]
    log: Path

    def request(self, method: str, path: str, body: Any = None, tenant: str = "local") -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.info["api_url"] + path,
            data=data,
            method=method,
            headers={"Authorization": f"Tenant {tenant}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.info["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def job(self, job_id: str, tenant: str = "local") -> dict[str, Any]:
        status, job = self.request("GET", f"/jobs/{job_id}", tenant=tenant)
        assert status == 200, job
        return job

    def finished(self, job_id: str, tenant: str = "local", timeout: float = 90.0) -> dict[str, Any]:
        return eventually(
            lambda: (
                (job := self.job(job_id, tenant))["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") and job
            ),
            timeout=timeout,
            what=f"job {job_id} to finish",
        )


def start_local(tmp_path: Path, *args: str) -> Iterator[Local]:
    state = tmp_path / "local.json"
    log = tmp_path / "local.log"
    with log.open("wb") as out:
        process = spawn_local(state, *args, output=out)
    try:
        eventually(lambda: state.exists() or process.poll() is not None, timeout=60, what="the local stack")
        if process.poll() is not None:
            raise AssertionError(f"batchplane local exited {process.returncode}:\n{log.read_text()}")
        yield Local(process=process, info=json.loads(state.read_text()), log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise
        assert not state.exists(), "the state file outlived the stack"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    yield from start_local(tmp_path_factory.mktemp("local"), "--workers", "4", "--sweep-interval", "3600")


@pytest.fixture(scope="module")
def spot_chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """Every Spot job reclaimed, and each function running as many invocations at once as the
    template lets it, as in Lambda."""
    yield from start_local(
        tmp_path_factory.mktemp("chaos"),
        "--concurrency",
        "template",
        "--workers",
        "2",
        "--spot-interruption-rate",
        "1",
        "--spot-interruption-after",
        "0.05",
        "--seed",
        "7",
        "--sweep-interval",
        "3600",
    )
