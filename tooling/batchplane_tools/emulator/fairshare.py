"""Which RUNNABLE job starts next: a FIFO queue's oldest, or a fair-share queue's by Batch's rule.

Batch's rule (User Guide, "Fair-share scheduling"): the share that has used the least compute for
its weight goes first (a lower weight factor gets more: 0.5 gets twice what 1.0 gets); usage counts
what runs now and what ran within the share decay window; within a share, the higher scheduling
priority first, then the older job. Batch does not publish its formula; the emulator's, which
keeps that order, is: a share's usage is the vCPUs it runs now plus the vCPU-seconds it ran,
decayed exponentially over the window, spread over the window (so both are vCPUs); a share is
ranked by usage x weight. Compute reservation is not emulated (it holds back a share of the maximum
vCPUs, and the emulator's few slots would round it away).

Pure: the scheduler passes the time and the jobs, and calls `ran` when a job that started ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

from batchplane_tools.emulator.specs import FairShareSpec, QueueSpec

BATCH_MIN_DECAY_SECONDS = 600  # shareDecaySeconds 0 means this


class Schedulable(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def queue(self) -> QueueSpec: ...
    @property
    def share_identifier(self) -> str | None: ...
    @property
    def scheduling_priority(self) -> int: ...
    @property
    def vcpus(self) -> str: ...


J = TypeVar("J", bound=Schedulable)


def _window(policy: FairShareSpec) -> float:
    return float(policy.share_decay_seconds or BATCH_MIN_DECAY_SECONDS)


class FairShare:
    """Decayed usage per (queue, share), and the pick of the next job to start."""

    def __init__(self) -> None:
        # (queue ARN, share) -> (decayed vCPU-seconds, as of this monotonic time)
        self._past: dict[tuple[str, str], tuple[float, float]] = {}

    def ran(self, job: Schedulable, seconds: float, now: float) -> None:
        """A job of a fair-share queue ran `seconds` and ended now: its share used that much."""
        policy = job.queue.fair_share
        if policy is None or job.share_identifier is None:
            return
        key = (job.queue.arn, job.share_identifier)
        self._past[key] = (self._decayed(key, policy, now) + float(job.vcpus) * max(seconds, 0.0), now)

    def _decayed(self, key: tuple[str, str], policy: FairShareSpec, now: float) -> float:
        value, at = self._past.get(key, (0.0, now))
        return value * math.exp(-(now - at) / _window(policy))

    def usage(self, queue: QueueSpec, share: str, running: Iterable[Schedulable], now: float) -> float:
        """The share's usage in vCPUs: running now, plus what it ran, decayed, over the window."""
        policy = queue.fair_share
        if policy is None:
            return 0.0
        current = sum(float(j.vcpus) for j in running if j.queue is queue and j.share_identifier == share)
        return current + self._decayed((queue.arn, share), policy, now) / _window(policy)

    def next_of_queue(self, waiting: list[J], running: Sequence[Schedulable], now: float) -> J:
        """The job of one queue's `waiting` (non-empty, all of that queue) that starts next."""
        queue = waiting[0].queue
        policy = queue.fair_share
        if policy is None:
            return min(waiting, key=lambda j: j.seq)
        shares = {j.share_identifier or "" for j in waiting}
        rank = {s: self.usage(queue, s, running, now) * policy.weight(s) for s in shares}
        return min(waiting, key=lambda j: (rank[j.share_identifier or ""], -j.scheduling_priority, j.seq))

    def pick(self, waiting: list[J], running: Sequence[Schedulable], now: float) -> J:
        """The next job to start on a free slot: each queue names its next job by its own rule, and
        the slots, which the emulator's queues share, go to the oldest of those."""
        by_queue: dict[str, list[J]] = {}
        for job in waiting:
            by_queue.setdefault(job.queue.arn, []).append(job)
        heads = [self.next_of_queue(jobs, running, now) for jobs in by_queue.values()]
        return min(heads, key=lambda j: j.seq)
