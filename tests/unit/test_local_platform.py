"""`batchplane local` on a platform without Linux's /proc says so before it starts anything."""

from __future__ import annotations

import pytest

from batchplane_tools.cli import main as cli
from batchplane_tools.emulator import supervisor


def test_local_on_another_platform_fails_with_a_clear_message_before_starting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a machine that is not Linux
    monkeypatch.setattr(supervisor.sys, "platform", "darwin")
    started: list[object] = []
    monkeypatch.setattr("batchplane_tools.local.stack.LocalStack.start", started.append)

    # When `batchplane local` runs
    status = cli.main(["local", "--api-port", "0", "--aws-port", "0"])

    # Then it exits 1 with the reason and nothing was started
    assert status == 1
    assert started == []
    error = capsys.readouterr().err
    assert error.startswith("batchplane: the local Batch emulator supervises job processes through")
    assert "darwin" in error
