"""The Batch emulator runs on Linux only (it supervises jobs through /proc), and says so when made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchplane_tools.emulator import BatchEmulator, QueueSpec

QUEUE = QueueSpec(
    name="batchplane-local-on-demand",
    arn="arn:aws:batch:us-east-1:123456789012:job-queue/batchplane-local-on-demand",
    capacity="ON_DEMAND",
)

# Lists every path under /proc that importing the emulator opens or lists.
PROBE = """
import sys
touched = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and str(args[0]).startswith("/proc"):
        touched.append(str(args[0]))
sys.addaudithook(hook)
import batchplane_tools.emulator
print(touched)
"""


def make() -> BatchEmulator:
    return BatchEmulator(queues=[QUEUE], definitions=[], emit=lambda detail: None)


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_making_the_emulator_elsewhere_than_linux_says_it_needs_linux(
    monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    # Given a platform that has no Linux /proc
    monkeypatch.setattr(sys, "platform", platform)

    # When the emulator is made, Then it refuses, naming the platform and the way out
    with pytest.raises(RuntimeError, match=r"through Linux's /proc; this is " + platform) as raised:
        make()
    assert "WSL2" in str(raised.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the emulator runs on Linux only")
def test_on_linux_the_emulator_is_made_and_stopped_without_serving() -> None:
    emulator = make()

    emulator.stop()

    assert emulator.log_dir is None
    assert emulator.jobs() == []


def test_importing_the_emulator_reads_nothing_under_proc() -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)

    assert probe.stdout.strip() == "[]"
