"""The REST API's request and response shapes: the public contract, separate from the domain."""

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, ConfigDict, Field, field_validator

from batchplane.models.base import Model
from batchplane.models.job import (
    Artifact,
    ArtifactRole,
    AttemptStatus,
    Capacity,
    FailureClass,
    Job,
    JobStatus,
)
from batchplane.models.scheduling import MAX_PRIORITY, MIN_PRIORITY
from batchplane.models.time import UtcDatetime
from batchplane.models.waiting import Waiting
from batchplane.policy.cost import JobCost, Pricing, job_cost, usd
from batchplane.service.ports import UsageLine, UsageMonth


def _round(amount: float) -> float:
    return round(amount, 6)


def _valid_unicode(value: str) -> str:
    # JSON's \ud800 escape makes a lone surrogate: a Python str, but no UTF-8 (nor DynamoDB) takes it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode: a lone surrogate at {exc.start}") from None
    return value


# A string the model does not otherwise constrain (a constrained one fails as `string_unicode`).
Text = Annotated[str, AfterValidator(_valid_unicode)]


class InputObject(Model):
    """An input the job reads; with `version_id` (a versioned bucket) or else `etag`, the worker reads
    exactly that content, and an attempt that finds it gone fails as INPUT_CHANGED."""

    model_config = ConfigDict(extra="forbid")

    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$", max_length=2048)
    version_id: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^[\x21-\x7e]+$",
        description="the object version to read (GetObject VersionId); wins over etag",
    )
    etag: str | None = Field(
        default=None,
        pattern=r'^"?[0-9A-Fa-f]{32}(-[1-9][0-9]{0,4})?"?$',
        description="the content to read where the bucket is not versioned (GetObject IfMatch)",
    )


class SubmitJobBody(Model):
    """POST /jobs. The tenant comes from the caller's identity, never from here."""

    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=64, examples=["word-count"])
    parameters: dict[Text, Text] = Field(default_factory=dict, examples=[{"input": "s3://bucket/in.txt"}])
    vcpus: int | None = Field(default=None, ge=1, le=256)
    memory_mib: int | None = Field(default=None, ge=1, le=1_048_576)
    inputs: list[InputObject] = Field(
        default_factory=list, max_length=100, json_schema_extra={"uniqueItems": True}
    )
    priority: int | None = Field(
        default=None,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="Batch scheduling priority within the tenant's share (higher starts first), within "
        "the range the policy allows the tenant (`scheduling`); default: the range's default",
    )
    when_over_limit: Literal["reject", "hold"] = Field(
        default="reject",
        description=(
            "over the tenant's in-flight limit for the job type (or behind its held jobs): `reject` "
            "answers 429; `hold` records the job HELD (202), released oldest first as slots free"
        ),
    )
    array: bool = Field(
        default=False,
        description=(
            "true: the first attempt may join other jobs of its type and route in one AWS Batch array job "
            "(waiting at most the type's `array.max_wait_seconds`); 422 when the type has no `array` policy"
        ),
    )

    @field_validator("inputs")
    @classmethod
    def _each_input_once(cls, inputs: list[InputObject]) -> list[InputObject]:
        # An object is one input of a job (one lineage item), however often it is named.
        seen: set[str] = set()
        for index, given in enumerate(inputs):
            if given.uri in seen:
                raise ValueError(f"inputs.{index}: {given.uri} is named twice")
            seen.add(given.uri)
        return inputs


class AttemptView(Model):
    number: int
    batch_job_id: str | None
    queue: str
    capacity: Capacity
    vcpus: int
    memory_mib: int
    status: AttemptStatus
    status_reason: str | None
    exit_code: int | None
    failure_class: FailureClass | None
    log_stream: str | None
    submitted_at: UtcDatetime
    started_at: UtcDatetime | None
    stopped_at: UtcDatetime | None
    cost_usd: float | None = Field(
        default=None,
        description="estimated: resources x run time at the price table's rates; none while it runs",
    )
    array_name: str | None = Field(
        default=None, description="the array job it runs in as a child (a coalesced file drop); none: alone"
    )
    array_index: int | None = Field(default=None, description="its index in that array job")


class PricesView(Model):
    """Which rates an estimate used: the region (the table's fallback for one it lacks) and source."""

    region: str
    architecture: str
    source: str
    as_of: str

    @classmethod
    def of(cls, pricing: Pricing) -> Self:
        return cls(
            region=pricing.region,
            architecture=pricing.architecture,
            source=pricing.source,
            as_of=pricing.as_of.isoformat(),
        )


class JobCostView(Model):
    """The job's estimated cost (USD), split into the attempt that succeeded and what the others and the
    fallbacks added."""

    total_usd: float
    successful_usd: float | None = Field(description="the attempt that succeeded; none if none did")
    retries_usd: float = Field(description="every attempt that did not succeed")
    premium_usd: float = Field(
        description="what the successful attempt's capacity and memory cost over the first attempt's ask"
    )
    extra_usd: float = Field(description="retries_usd + premium_usd: what retries and fallbacks added")
    by_failure_class: dict[str, float]
    running: bool = Field(description="an attempt is still running: the figures so far")
    prices: PricesView

    @classmethod
    def of(cls, cost: JobCost, pricing: Pricing) -> Self:
        return cls(
            total_usd=_round(cost.total),
            successful_usd=None if cost.successful is None else _round(cost.successful),
            retries_usd=_round(cost.retries),
            premium_usd=_round(cost.premium),
            extra_usd=_round(cost.extra),
            by_failure_class={k: _round(v) for k, v in cost.by_failure_class.items()},
            running=cost.running,
            prices=PricesView.of(pricing),
        )


class HistoryView(Model):
    at: UtcDatetime
    event: str
    reason: str


class ArtifactView(Model):
    uri: str
    size: int | None
    etag: str | None
    version_id: str | None = None
    role: ArtifactRole
    attempt: int | None = Field(default=None, description="the attempt that wrote it; none for an input")


class WaitingView(Model):
    """Why a job waits in Batch: only while its attempt is SUBMITTED, PENDING, RUNNABLE or STARTING."""

    status: AttemptStatus
    reason: str | None = Field(description="Batch's statusReason for the wait, when Batch gave one")
    since: UtcDatetime = Field(description="when the attempt reached this state")
    position: int | None = Field(
        description="1: the next job Batch starts in its queue; given only among the first 100 RUNNABLE"
    )
    position_note: str = Field(
        examples=["not in the first 100 RUNNABLE jobs of its queue"],
        description="where the position comes from, or why there is none",
    )
    position_as_of: UtcDatetime | None = Field(
        description="when Batch last updated the queue snapshot the position comes from"
    )


class JobView(Model):
    job_id: str
    tenant: str
    job_type: str
    status: JobStatus
    parameters: dict[str, str]
    vcpus: int
    memory_mib: int
    inputs: list[str]
    output_prefix: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    held_reason: str | None = Field(default=None, description="why a HELD job waits")
    attempts: list[AttemptView]
    history: list[HistoryView]
    artifacts: list[ArtifactView] = Field(
        description="its inputs and the first of its outputs; GET /jobs/{job_id}/artifacts has them all"
    )
    more_artifacts: bool = Field(default=False, description="more outputs than `artifacts` shows")
    share: str | None = Field(
        default=None, description="Batch share identifier of its attempts; none: admitted before fair share"
    )
    priority: int | None = Field(default=None, description="its scheduling priority within the share")
    waiting: WaitingView | None = Field(
        default=None,
        description="GET /jobs/{job_id} of a job waiting in Batch: why, and its place in the queue",
    )
    cost: JobCostView | None = Field(
        default=None, description="estimated from its attempts at the price table's rates"
    )

    @classmethod
    def of(
        cls,
        job: Job,
        recorded: list[Artifact] | None = None,
        *,
        more: bool = False,
        waiting: Waiting | None = None,
        pricing: Pricing | None = None,
    ) -> Self:
        """The job; with `recorded`, the first of the artifacts recorded beside it too; with
        `pricing`, each attempt's cost and the job's."""
        view = cls.model_validate(job.model_dump(exclude={"cost_book"}))
        if recorded:
            view.artifacts.extend(ArtifactView.model_validate(a.model_dump()) for a in recorded)
        view.more_artifacts = more
        if waiting is not None:
            view.waiting = WaitingView.model_validate(waiting.model_dump())
        if pricing is not None:
            cost = job_cost(pricing, job)
            for attempt in view.attempts:
                amount = cost.attempts.get(attempt.number)
                attempt.cost_usd = None if amount is None else _round(amount)
            view.cost = JobCostView.of(cost, pricing)
        return view


class JobList(Model):
    jobs: list[JobView]
    next_token: str | None


class LogLineView(Model):
    at: UtcDatetime
    message: str


class AttemptLogView(Model):
    """GET /jobs/{job_id}/attempts/{attempt}/log: a page of the attempt's log, oldest line first."""

    job_id: str
    attempt: int
    where: str = Field(description="the log group and stream, <group>/<stream>")
    lines: list[LogLineView]
    next_token: str | None = Field(
        description="the lines after these; null once the attempt has ended and its log is read to the end"
    )


class ArtifactList(Model):
    """GET /jobs/{job_id}/artifacts: the outputs each attempt wrote, by attempt, role and URI."""

    artifacts: list[ArtifactView]
    next_token: str | None


class ArtifactUseView(Model):
    job_id: str
    attempt: int = Field(description="the attempt that wrote it; 0 for an input, read by every attempt")
    uri: str
    role: ArtifactRole
    size: int | None
    etag: str | None
    version_id: str | None


class ArtifactUses(Model):
    """GET /artifacts?uri=: which of the caller's jobs read or wrote an object."""

    uses: list[ArtifactUseView]
    next_token: str | None


class SummaryView(Model):
    """GET /summary: the jobs created in [since, until), a tenant's or (all_tenants) every tenant's
    unfinished ones."""

    tenant: str | None = Field(description="whose jobs; null with all_tenants")
    all_tenants: bool
    since: UtcDatetime
    until: UtcDatetime
    jobs: int = Field(description="jobs counted: the newest 1,000 created in the window at most")
    complete: bool = Field(description="false when more jobs than `jobs` were created in the window")
    by_status: dict[JobStatus, int]
    retries_by_failure_class: dict[FailureClass, int] = Field(
        description="retries decided, by the failure class of the attempt retried "
        "(each job's last 8 decisions)"
    )
    spot_fallbacks: int = Field(description="moves from Spot to on-demand")
    jobs_fallen_back: list[str] = Field(description="the newest jobs that fell back from Spot, up to 20")


class UsageLineView(Model):
    job_type: str
    outcome: JobStatus = Field(description="SUCCEEDED, FAILED or CANCELLED")
    jobs: int = Field(description="finishes (a job retried by hand counts at each finish)")
    cost_usd: float
    extra_usd: float = Field(description="of cost_usd: what retries and fallbacks added")
    cost_per_job_usd: float

    @classmethod
    def of(cls, line: UsageLine) -> Self:
        return cls(
            job_type=line.job_type,
            outcome=JobStatus(line.outcome),
            jobs=line.jobs,
            cost_usd=_round(usd(line.cost)),
            extra_usd=_round(usd(line.extra)),
            cost_per_job_usd=_round(usd(line.cost) / line.jobs) if line.jobs else 0.0,
        )


class UsageMonthView(Model):
    month: str = Field(examples=["2026-12"])
    spent_usd: float = Field(description="the estimated cost of the jobs admitted this month that finished")
    reserved_usd: float = Field(description="the budget reservations of those not yet finished")
    budget_usd: float | None = Field(description="the tenant's monthly budget, if the policy sets one")
    lines: list[UsageLineView]


class Usage(Model):
    """GET /usage: the caller's estimated spend by month (the month a job was admitted in), job type
    and outcome. The books are monthly: `from` and `to` are months."""

    from_month: str = Field(alias="from")
    to_month: str = Field(alias="to")
    currency: str = "USD"
    total_usd: float
    by_job_type: list[UsageLineView] = Field(description="the months together")
    months: list[UsageMonthView]
    prices: PricesView

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def of(
        cls, first: str, last: str, months: list[UsageMonth], budget_usd: float | None, pricing: Pricing
    ) -> Self:
        totals: dict[tuple[str, str], UsageLine] = {}
        for month in months:
            for line in month.lines:
                key = (line.job_type, line.outcome)
                was = totals.get(key, UsageLine(line.job_type, line.outcome, 0, 0, 0))
                totals[key] = UsageLine(
                    line.job_type,
                    line.outcome,
                    was.jobs + line.jobs,
                    was.cost + line.cost,
                    was.extra + line.extra,
                )
        return cls(
            from_month=first,
            to_month=last,
            total_usd=_round(usd(sum(m.spent for m in months))),
            by_job_type=[UsageLineView.of(line) for _, line in sorted(totals.items())],
            months=[
                UsageMonthView(
                    month=m.month,
                    spent_usd=_round(usd(m.spent)),
                    reserved_usd=_round(usd(m.reserved)),
                    budget_usd=budget_usd,
                    lines=[UsageLineView.of(line) for line in m.lines],
                )
                for m in months
            ],
            prices=PricesView.of(pricing),
        )


class ErrorDetailView(Model):
    field: str = Field(description="the field, parameter or header at fault, e.g. `parameters.input`")
    reason: str


class ErrorView(Model):
    code: str = Field(examples=["invalid_request"])
    message: str
    details: list[ErrorDetailView]


class ErrorBody(Model):
    """Every error the API answers, whatever its status."""

    error: ErrorView
