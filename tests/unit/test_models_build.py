"""Every model builds, though none is built at import (each builds its validator at first use)."""

from __future__ import annotations

import subprocess
import sys

from pydantic import BaseModel

from batchplane.api import schemas
from batchplane.models import batch_event, dispatch, job, policy, request, s3_event
from batchplane.models.base import Model, build_all
from batchplane.settings import Settings

MODULES = (schemas, batch_event, dispatch, job, policy, request, s3_event)


def every_model() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [Settings]
    for module in MODULES:
        defined = (v for v in vars(module).values() if getattr(v, "__module__", None) == module.__name__)
        found.extend(v for v in defined if isinstance(v, type) and issubclass(v, BaseModel))
    return found


def test_every_model_derives_from_the_deferred_base() -> None:
    # Given every pydantic model batchplane defines
    models = every_model()

    # Then each is a Model (so none builds its validator at import)
    assert len(models) > 25
    assert [m.__name__ for m in models if not issubclass(m, Model)] == []


def test_a_model_is_not_built_at_import_and_is_at_its_first_use() -> None:
    # Given a fresh interpreter that imports the job models
    code = (
        "from datetime import UTC, datetime\n"
        "from batchplane.models.job import HistoryEntry, Job\n"
        "print(Job.__pydantic_complete__, HistoryEntry.__pydantic_complete__)\n"
        "HistoryEntry(at=datetime.now(UTC), event='e', reason='r')\n"
        "print(Job.__pydantic_complete__, HistoryEntry.__pydantic_complete__)\n"
    )

    # When it makes one HistoryEntry
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    # Then nothing was built at import, and the first use built that model only
    assert out.split() == ["False", "False", "False", "True"]


def test_every_model_builds() -> None:
    # When every model defined so far is built (as the local stack does before serving)
    count = build_all()

    # Then all of them build, and are complete
    assert count >= len(every_model())
    assert [m.__name__ for m in every_model() if not m.__pydantic_complete__] == []
