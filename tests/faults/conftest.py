"""The fault matrix's fixture: one stack per test worker for every flow (each run empties it). The
report printed at the end of the session is tests/conftest.py's (the controller of pytest-xdist
loads only that conftest)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import aws_stack, fake_credentials
from tests.faults.matrix import Harness, harness_on


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """template.yaml's stack on moto, shared by the module's flows: provisioning it costs more than
    most flows' runs together, and every run starts from an empty table and empty queues."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake_credentials(monkeypatch)
        with aws_stack(monkeypatch) as aws, harness_on(aws) as made:
            yield made
