"""One tour of every flow under the template's roles, shared by the least-privilege tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from batchplane_tools.iam.findings import Verdict, judge, resource_policies, template_comments
from tests.iam.harness import IamStack, iam_stack
from tests.iam.tour import Tour
from tests.support import TEMPLATE


@dataclass
class Toured:
    iam: IamStack
    tour: Tour
    verdicts: list[Verdict]
    comments: dict[str, str]


@pytest.fixture(scope="module")
def toured() -> Iterator[Toured]:
    with iam_stack() as iam:
        tour = Tour(iam)
        tour.run()
        verdicts = judge(iam.recorder, iam.roles, iam.encryption, resource_policies(iam.stack))
        yield Toured(iam, tour, verdicts, template_comments(TEMPLATE.read_text(encoding="utf-8")))
