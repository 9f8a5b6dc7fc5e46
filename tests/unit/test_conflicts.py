"""Read-change-write under a version guard: tried again on a conflict, three times at most."""

from __future__ import annotations

import pytest

from batchplane.errors import ConcurrentUpdate
from batchplane.service.conflicts import TRIES, retry_on_conflict


class Writer:
    """A write that meets `conflicts` other writers before it lands."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.conflicts:
            raise ConcurrentUpdate(f"changed concurrently ({self.calls})")
        return f"written on try {self.calls}"


def test_a_write_without_conflict_runs_once() -> None:
    # Given a write nobody races; When it runs under the helper; Then it runs once
    writer = Writer(conflicts=0)
    assert retry_on_conflict(writer) == "written on try 1"
    assert writer.calls == 1


def test_a_write_that_loses_a_race_is_tried_again_on_a_fresh_read() -> None:
    # Given a write that loses to another writer twice
    writer = Writer(conflicts=TRIES - 1)

    # When it runs under the helper; Then the last allowed try lands
    assert retry_on_conflict(writer) == f"written on try {TRIES}"


def test_a_write_that_keeps_losing_raises_the_last_conflict() -> None:
    # Given a write that loses every race
    writer = Writer(conflicts=TRIES)

    # When it runs under the helper; Then the last try's ConcurrentUpdate reaches the caller
    with pytest.raises(ConcurrentUpdate, match=f"\\({TRIES}\\)"):
        retry_on_conflict(writer)
    assert writer.calls == TRIES


def test_any_other_error_is_not_retried() -> None:
    # Given a write that fails for another reason
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("not a conflict")

    # Then it fails at once
    with pytest.raises(ValueError, match="not a conflict"):
        retry_on_conflict(broken)
    assert calls == [1]
