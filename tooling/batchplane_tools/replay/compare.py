"""Each recorded job's decisions made again against a candidate policy, with the runtime's own pure
functions: `policy/admission.py::admit`, `policy/routing.py::route`, `policy/retry.py::decide`.

What is replayed is the decisions, not the runs: each attempt keeps its recorded outcome (how it
ended, its failure class, how long it ran), and the candidate decides what follows it. So a candidate
that gives more memory still sees the recorded out-of-memory kill, and an attempt the candidate would
make but the record does not hold (a retry where the job gave up) is counted, never priced. Not
replayed: the request's size in bytes (not recorded), the tenant's in-flight quota and budget (they
depend on what else was running), manual retries (read as retries).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from batchplane.errors import BatchplaneError
from batchplane.models.job import ArtifactRole, Attempt, AttemptStatus, Capacity, Job, JobStatus
from batchplane.models.policy import PolicyDocument
from batchplane.models.request import JobRequest
from batchplane.policy.admission import admit
from batchplane.policy.cost import Pricing, attempt_cost, job_cost
from batchplane.policy.inputs import StackBuckets
from batchplane.policy.retry import GiveUp, Retry, decide
from batchplane.policy.routing import Queues, route

# Routing's queue is the capacity's; the names are the stack's and not compared.
_QUEUES = Queues(spot=Capacity.SPOT.value, on_demand=Capacity.ON_DEMAND.value)
_WAITING = frozenset({JobStatus.QUEUED, JobStatus.RETRY_WAIT})


@dataclass
class Run:
    """What one policy did (recorded) or would do (candidate) with a job."""

    admitted: bool = True
    refusal: str = ""
    first_capacity: str = ""
    attempts: int = 0
    retries: int = 0
    gave_up: bool = False
    max_memory_mib: int = 0
    cost: float = 0.0
    beyond_record: int = 0  # attempts the candidate would make that the record does not hold

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "cost": round(self.cost, 6)}


@dataclass
class JobReplay:
    job_id: str
    tenant: str
    job_type: str
    recorded: Run
    candidate: Run
    divergence: str | None = None  # the first point where the candidate decides otherwise

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "tenant": self.tenant,
            "job_type": self.job_type,
            "recorded": self.recorded.as_dict(),
            "candidate": self.candidate.as_dict(),
            "divergence": self.divergence,
        }


@dataclass
class _Walk:
    """The candidate's job as it goes: capacity and memory for the next attempt, attempts so far."""

    job: Job
    run: Run
    divergence: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def diverge(self, text: str) -> None:
        self.divergence = self.divergence or text


def _retried(job: Job, index: int) -> bool:
    """Whether the record holds a retry after its attempt at `index`: a next attempt, or one awaited."""
    return index + 1 < len(job.attempts) or job.status in _WAITING


def recorded_run(pricing: Pricing, job: Job) -> Run:
    return Run(
        first_capacity=job.attempts[0].capacity.value if job.attempts else job.capacity.value,
        attempts=len(job.attempts),
        retries=sum(
            1 for i, a in enumerate(job.attempts) if a.status is AttemptStatus.FAILED and _retried(job, i)
        ),
        gave_up=job.status is JobStatus.FAILED,
        max_memory_mib=max((a.memory_mib for a in job.attempts), default=job.memory_mib),
        cost=job_cost(pricing, job).total,
    )


def _request(job: Job) -> JobRequest:
    """The job's request as far as the record holds it: what it asked for at its first attempt."""
    first = job.attempts[0] if job.attempts else None
    return JobRequest(
        tenant=job.tenant,
        job_type=job.job_type,
        parameters=job.parameters,
        vcpus=first.vcpus if first else job.vcpus,
        memory_mib=first.memory_mib if first else job.memory_mib,
        inputs=[a for a in job.artifacts if a.role is ArtifactRole.INPUT],
        source=job.source,
    )


def _buckets(job: Job, ingest_bucket: str) -> StackBuckets:
    artifacts = job.output_prefix.removeprefix("s3://").partition("/")[0]
    return StackBuckets(ingest=ingest_bucket, artifacts=artifacts)


def _describe(attempt: Attempt | Any) -> str:
    return f"{attempt.capacity.value}, {attempt.vcpus} vCPU, {attempt.memory_mib} MiB"


def replay_job(
    candidate: PolicyDocument, pricing: Pricing, job: Job, *, ingest_bucket: str, seed: int = 0
) -> JobReplay:
    recorded = recorded_run(pricing, job)
    result = JobReplay(job.job_id, job.tenant, job.job_type, recorded, Run())
    try:
        admitted = admit(
            candidate,
            _request(job),
            job_id=job.job_id,
            now=job.created_at,
            buckets=_buckets(job, ingest_bucket),
        )
    except BatchplaneError as refused:
        reason = "; ".join(f"{d.field}: {d.reason}" for d in refused.details) or refused.message
        result.candidate = Run(admitted=False, refusal=reason)
        result.divergence = f"admission: recorded admitted; candidate refuses ({reason})"
        return result
    walk = _Walk(job=admitted, run=result.candidate)
    _attempts(candidate, pricing, job, walk, random.Random(seed))
    walk.run.attempts = len(walk.attempts) + walk.run.beyond_record
    walk.run.first_capacity = walk.attempts[0].capacity.value if walk.attempts else admitted.capacity.value
    walk.run.max_memory_mib = max((a.memory_mib for a in walk.attempts), default=admitted.memory_mib)
    result.divergence = walk.divergence
    return result


def _attempts(candidate: PolicyDocument, pricing: Pricing, job: Job, walk: _Walk, rng: random.Random) -> None:
    """Walk the recorded attempts with the candidate's routing and retry decisions."""
    job_type = candidate.job_types[job.job_type]
    # The candidate's share for the tenant; the job's own priority, else the candidate's default.
    placement = candidate.scheduling.placement(job.tenant)
    for index, recorded in enumerate(job.attempts):
        routed = route(
            job_type,
            capacity=walk.job.capacity,
            vcpus=walk.job.vcpus,
            memory_mib=walk.job.memory_mib,
            queues=_QUEUES,
            definition_prefix="",
            share=placement.share,
            priority=placement.priority.default if job.priority is None else job.priority,
        )
        mine = recorded.model_copy(
            update={"capacity": routed.capacity, "vcpus": routed.vcpus, "memory_mib": routed.memory_mib}
        )
        if (mine.capacity, mine.vcpus, mine.memory_mib) != (
            recorded.capacity,
            recorded.vcpus,
            recorded.memory_mib,
        ):
            walk.diverge(
                f"attempt {recorded.number} routing: recorded {_describe(recorded)}; "
                f"candidate {_describe(mine)}"
            )
        if not recorded.job_definition.endswith(routed.job_definition):
            walk.diverge(
                f"attempt {recorded.number} routing: recorded job definition {recorded.job_definition}; "
                f"candidate {routed.job_definition}"
            )
        walk.attempts.append(mine)
        walk.run.cost += attempt_cost(pricing, mine) or 0.0
        if recorded.status is not AttemptStatus.FAILED:
            return  # succeeded, or still in Batch's hands: nothing decided after it yet
        decision = decide(job_type, walk.job.model_copy(update={"attempts": list(walk.attempts)}), rng)
        retried = _retried(job, index)
        if isinstance(decision, GiveUp):
            walk.run.gave_up = True
            if retried:
                walk.diverge(
                    f"attempt {recorded.number} failed: recorded retried; "
                    f"candidate gives up ({decision.reason})"
                )
            return
        walk.run.retries += 1
        if not retried:
            walk.run.beyond_record += 1
            walk.diverge(
                f"attempt {recorded.number} failed: recorded gave up; candidate retries ({decision.reason})"
            )
            return
        walk.job = _after(walk.job, decision)


def _after(job: Job, decision: Retry) -> Job:
    return job.model_copy(update={"capacity": decision.capacity, "memory_mib": decision.memory_mib})


@dataclass
class Totals:
    """One job type's jobs under each policy."""

    jobs: int = 0
    differing: int = 0
    admitted: list[int] = field(default_factory=lambda: [0, 0])
    on_spot_first: list[int] = field(default_factory=lambda: [0, 0])
    attempts: list[int] = field(default_factory=lambda: [0, 0])
    retries: list[int] = field(default_factory=lambda: [0, 0])
    give_ups: list[int] = field(default_factory=lambda: [0, 0])
    max_memory_mib: list[int] = field(default_factory=lambda: [0, 0])
    cost: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def add(self, replay: JobReplay) -> None:
        self.jobs += 1
        self.differing += replay.divergence is not None
        for side, run in enumerate((replay.recorded, replay.candidate)):
            self.admitted[side] += run.admitted
            self.on_spot_first[side] += run.admitted and run.first_capacity == Capacity.SPOT.value
            self.attempts[side] += run.attempts
            self.retries[side] += run.retries
            self.give_ups[side] += run.gave_up
            self.max_memory_mib[side] = max(self.max_memory_mib[side], run.max_memory_mib)
            self.cost[side] += run.cost

    def rows(self) -> list[tuple[str, object, object]]:
        """(what, recorded, candidate) for each figure."""
        pairs: list[tuple[str, list[int] | list[float]]] = [
            ("admitted", self.admitted),
            ("refused", [self.jobs - self.admitted[0], self.jobs - self.admitted[1]]),
            ("first attempt on Spot", self.on_spot_first),
            ("attempts", self.attempts),
            ("retries", self.retries),
            ("give-ups", self.give_ups),
            ("largest memory, MiB", self.max_memory_mib),
        ]
        rows: list[tuple[str, object, object]] = [(label, pair[0], pair[1]) for label, pair in pairs]
        rows.append(("estimated cost, USD", round(self.cost[0], 6), round(self.cost[1], 6)))
        return rows


def by_job_type(replays: list[JobReplay]) -> dict[str, Totals]:
    totals: dict[str, Totals] = {}
    for replay in replays:
        totals.setdefault(replay.job_type, Totals()).add(replay)
    return dict(sorted(totals.items()))


def replay_all(
    candidate: PolicyDocument, pricing: Pricing, jobs: list[Job], *, ingest_bucket: str, seed: int = 0
) -> list[JobReplay]:
    replays = []
    for job in jobs:
        if job.job_type not in candidate.job_types:
            reason = f"job type {job.job_type} is not in the candidate"
            replays.append(
                JobReplay(
                    job.job_id,
                    job.tenant,
                    job.job_type,
                    recorded_run(pricing, job),
                    Run(admitted=False, refusal=reason),
                    f"admission: recorded admitted; candidate refuses ({reason})",
                )
            )
            continue
        replays.append(replay_job(candidate, pricing, job, ingest_bucket=ingest_bucket, seed=seed))
    return replays
