"""Array jobs, the pure part: which messages may share an array, how long one may wait for others,
the array's deterministic name, its parts and its manifest. service/coalesce.py does the I/O."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from batchplane.models.dispatch import DispatchMessage
from batchplane.policy.routing import ARRAY_NAME_PREFIX

# Members per parts item: 100 "<job_id>#<attempt>" strings of ~40 bytes, ~4 KB, one write unit's few.
PART_SIZE = 100
_NAME_DIGITS = 24
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Member:
    """One job's attempt in an array, at its index (children are sorted by job id)."""

    index: int
    message: DispatchMessage

    @property
    def key(self) -> str:
        return member_key(self.message.job_id, self.message.attempt)


def member_key(job_id: str, attempt: int) -> str:
    return f"{job_id}#{attempt}"


def parse_member_key(key: str) -> tuple[str, int]:
    job_id, _, attempt = key.rpartition("#")
    return job_id, int(attempt)


def array_name(keys: Iterable[str]) -> str:
    """ "bp-array-" and 24 hex digits of the SHA-256 of the sorted member keys: the same members make
    the same name whatever the order their messages came in, so a redelivery finds its array again."""
    digest = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()
    return f"{ARRAY_NAME_PREFIX}{digest[:_NAME_DIGITS]}"


def members_of(messages: Iterable[DispatchMessage]) -> list[Member]:
    """The messages as an array's members, indexed 0..N-1 in job-id order (one per job)."""
    unique = {m.job_id: m for m in messages}
    return [Member(index, unique[job_id]) for index, job_id in enumerate(sorted(unique))]


def grouped(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """The items by key, each group in arrival order."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """The items cut into runs of at most `size`, in order."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def remaining_wait(oldest_since: float, now: float, max_wait_seconds: int) -> int:
    """Whole seconds the group still waits for others (0: it goes now), never past the oldest's limit."""
    return max(0, math.ceil(oldest_since + max_wait_seconds - now))


def parts_of(keys: Sequence[str]) -> list[list[str]]:
    """The member keys as parts items hold them: part k holds indexes k*100 .. k*100+99."""
    return [list(part) for part in chunks(keys, PART_SIZE)]


def part_of(index: int) -> tuple[int, int]:
    """(part number, position within it) of an index."""
    return divmod(index, PART_SIZE)


def manifest_line(index: int, message: DispatchMessage, output_prefix: str) -> dict[str, Any]:
    """A child's line: everything a single job's environment holds for its attempt, and its
    parameters (an array's children share the parent's, so each reads its own here)."""
    return {
        "index": index,
        "job_id": message.job_id,
        "attempt": message.attempt,
        "tenant": message.tenant,
        "output_prefix": output_prefix,
        # Exactly as BATCHPLANE_INPUTS holds them (models/pins.py::pins_json).
        "inputs": [pin.model_dump(exclude_none=True) for pin in message.inputs],
        "parameters": message.parameters,
    }


def manifest_text(lines: Iterable[dict[str, Any]]) -> str:
    """JSON Lines, keys sorted: the same members always make the same bytes."""
    return "".join(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n" for line in lines)
