"""What must hold after a run, whatever failed: the books read back from the world, normalised so a
faulted run compares with the fault-free one, and the invariants checked on them.

1. a request (or a dropped object) is exactly one job;
2. a job's attempt is exactly one Batch job (named `bp-<job_id>-<n>`), the one the attempt records;
3. the final state is the fault-free run's (transient faults);
4. a tenant's in-flight count is its unfinished jobs (zero once they all finished);
5. every alert and job event a write owed was delivered, at least once (one id each);
6. no DLQ holds anything, unless the fault was permanent, and then a log line says why.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from batchplane.models.job import DISPATCHABLE_STATUSES, ArtifactRole, Job
from tests.faults.injector import SERVER_ERROR_CODES
from tests.faults.world import DLQS, Settled, World


@dataclass(frozen=True)
class Books:
    """A run's outcome by request ("<tenant> <input>"), free of ids that differ between runs."""

    jobs: dict[str, dict[str, Any]]
    counters: dict[str, int]
    published: dict[str, list[str]]  # each owed event once (by id): "alert" or a job event's type


@dataclass
class Observed:
    books: Books
    violations: list[str] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)  # owed event ids never published


def request_of(job: Job) -> str:
    return f"{job.tenant} {job.parameters.get('input', '?')}"


def observe(world: World, tag: str) -> Observed:
    """Read the books and check what holds whatever the expected outcome (1, 2, 4, 5). The books name
    requests without the run's tag, so two runs' compare."""
    jobs = _jobs(world)
    violations: list[str] = []
    by_request = Counter(request_of(job) for job in jobs)
    violations += [f"request {r} made {n} jobs" for r, n in sorted(by_request.items()) if n != 1]
    states: dict[str, dict[str, Any]] = {}
    for job in jobs:
        terminated, problems = _batch_jobs(world, job)
        violations += problems
        states[request_of(job).replace(tag, "*")] = _state(world, job, terminated)
    counters = world.counters()
    violations += _in_flight(jobs, counters)
    published, undelivered, problems = _published(world, jobs)
    violations += problems
    books = Books(
        states,
        {key.replace(tag, "*"): n for key, n in counters.items()},
        {request.replace(tag, "*"): kinds for request, kinds in published.items()},
    )
    return Observed(books, violations, undelivered)


def check(
    world: World, observed: Observed, expected: Books, *, permanent: bool, settled: Settled
) -> list[str]:
    """Every violation of a run that ended in `observed`, against the fault-free run's books."""
    violations = list(observed.violations)
    letters = {dlq: found for dlq, found in world.dead_letters().items() if found}
    if not permanent:
        if not settled.quiet:
            violations.append(
                f"never quiet after {settled.sweeps_that_worked} sweeps that each changed something"
            )
        violations += [f"owed {event_id} never delivered" for event_id in observed.undelivered]
        violations += [f"{dlq} holds {len(found)}: {_short(found[0])}" for dlq, found in letters.items()]
        violations += [f"client gave up: {request}" for request in world.client_gave_up]
        violations += _differences(expected, observed.books)
        return violations
    # A permanent fault: what could not be done waits in a DLQ (or the client was told, or the failed
    # sweep is the next one's to redo), and its function said why.
    swept = any(line.startswith("sweeper: ERROR") for line in world.log_lines)
    if observed.books != expected and not (letters or world.client_gave_up or swept):
        violations.append("left undone, and nothing kept to try again")
    if observed.undelivered and "OutboxDLQ" not in letters:
        violations += [
            f"owed {event_id} never delivered, and not in OutboxDLQ" for event_id in observed.undelivered
        ]
    for dlq, kept in letters.items():
        said = [line for line in world.log_lines if line.startswith(f"{DLQS[dlq]}: ")]
        if not any(code in line for line in said for code in SERVER_ERROR_CODES):
            violations.append(f"{dlq} holds {len(kept)} with no line of {DLQS[dlq]} saying why")
    return violations


def _jobs(world: World) -> list[Job]:
    jobs = [world.store.get(job_id) for job_id in world.job_ids()]
    return sorted((j for j in jobs if j is not None), key=request_of)


def _batch_jobs(world: World, job: Job) -> tuple[list[int], list[str]]:
    """The attempts whose Batch job was terminated, and what breaks "one Batch job per attempt"."""
    found: list[dict[str, Any]] = []
    for queue in (world.aws.env["SPOT_JOB_QUEUE"], world.aws.env["ON_DEMAND_JOB_QUEUE"]):
        found += world.batch.list_jobs(
            jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [f"bp-{job.job_id}-*"]}]
        )["jobSummaryList"]
    problems: list[str] = []
    names = Counter(j["jobName"] for j in found)
    for name, count in sorted(names.items()):
        number = int(name.rsplit("-", 1)[1])
        recorded = job.attempt(number)
        if count != 1:
            problems.append(f"{count} Batch jobs named {name}")
        if recorded is None and not (number == len(job.attempts) + 1 and job.status in DISPATCHABLE_STATUSES):
            # (a submission of the attempt the job waits for is adopted when its message comes back)
            problems.append(f"Batch job {name} is of no attempt the job records")
        elif recorded is not None and recorded.batch_job_id not in {
            j["jobId"] for j in found if j["jobName"] == name
        }:
            problems.append(f"attempt {number} records {recorded.batch_job_id}, not Batch's job {name}")
    for attempt in job.attempts:
        # (an array child's Batch job is its parent's child, `<parent>:<index>`, named as its array)
        if (
            attempt.array_name is None
            and attempt.batch_job_id not in (None, *world.forgotten)
            and names[attempt.job_name] == 0
        ):
            problems.append(f"attempt {attempt.number} has no Batch job")
    ids = [j["jobId"] for j in found]
    described = world.batch.describe_jobs(jobs=ids)["jobs"] if ids else []
    # moto's jobs end at once; only a TerminateJob leaves a statusReason on them.
    terminated = sorted(int(d["jobName"].rsplit("-", 1)[1]) for d in described if d.get("statusReason"))
    return terminated, problems


def _state(world: World, job: Job, terminated: list[int]) -> dict[str, Any]:
    outputs = world.store.artifacts(job.job_id, limit=100).artifacts
    return {
        "status": job.status.value,
        "attempts": [
            (
                a.number,
                a.status.value,
                a.capacity.value,
                a.memory_mib,
                a.failure_class and a.failure_class.value,
            )
            for a in job.attempts
        ],
        "history": [entry.event for entry in job.history],
        "outputs": sorted(
            (a.attempt, a.uri.rsplit("/", 1)[1]) for a in outputs if a.role is ArtifactRole.OUTPUT
        ),
        "terminated": terminated,
    }


def _in_flight(jobs: list[Job], counters: dict[str, int]) -> list[str]:
    unfinished = Counter(f"{j.tenant} {j.job_type}" for j in jobs if not j.status.is_terminal)
    return [
        f"in-flight count of {key} is {counters.get(key, 0)}, with {unfinished[key]} unfinished jobs"
        for key in sorted(set(counters) | set(unfinished))
        if counters.get(key, 0) != unfinished[key]
    ]


def _published(world: World, jobs: list[Job]) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """What was delivered, each event once by its id, by request; the ids owed but never delivered;
    and any id delivered with two contents."""
    delivered = world.collect_published()
    undelivered = sorted(world.owed - {event_id for event_id, _, _ in delivered})
    requests = {job.job_id: request_of(job) for job in jobs}
    published: dict[str, list[str]] = {}
    for event_id, kind, subject in sorted(set(delivered)):
        request = requests.get(event_id.split(":", 1)[0], "?")
        published.setdefault(request, []).append("alert" if kind == "alert" else subject)
    variants = Counter(event_id for event_id, _, _ in set(delivered))
    problems = [f"event {event_id} delivered with {n} contents" for event_id, n in variants.items() if n > 1]
    return {request: sorted(kinds) for request, kinds in published.items()}, undelivered, problems


def _differences(expected: Books, got: Books) -> list[str]:
    found: list[str] = []
    for request in sorted(set(expected.jobs) | set(got.jobs)):
        want, have = expected.jobs.get(request), got.jobs.get(request)
        if want is None or have is None:
            found.append(f"job of {request}: {'only in' if have is None else 'not in'} the fault-free run")
            continue
        found += [f"{request} {k}: {have[k]!r}, fault-free {want[k]!r}" for k in want if want[k] != have[k]]
    if expected.counters != got.counters:
        found.append(f"in-flight counts {got.counters}, fault-free {expected.counters}")
    if expected.published != got.published:
        found.append(f"published {got.published}, fault-free {expected.published}")
    return found


def _short(letter: dict[str, Any]) -> str:
    text = str(letter)
    return text if len(text) < 160 else text[:157] + "..."
