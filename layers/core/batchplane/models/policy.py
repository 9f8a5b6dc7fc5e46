"""The policy document: job types, routing, resources, admission limits, retry rules, file-drop rules.

One YAML file, validated as a whole before anything uses it, so a bad policy fails loudly with the
path of the bad field and never half-applies.
"""

import re
from enum import StrEnum
from functools import cached_property
from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchplane.models.base import Model
from batchplane.models.inputs import (
    INGEST,
    TENANT,
    TENANT_NAME,
    InputSources,
    prefix_template_problem,
    tenant_keyed,
)
from batchplane.models.job import FailureClass
from batchplane.models.prices import ARCHITECTURES, PriceTable
from batchplane.models.scheduling import MAX_PRIORITY, MIN_PRIORITY, Scheduling

_NAME = r"^[a-z][a-z0-9-]{0,62}$"


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacityPreference(StrEnum):
    SPOT_FIRST = "SPOT_FIRST"
    ON_DEMAND_ONLY = "ON_DEMAND_ONLY"


class ParameterRule(_Strict):
    pattern: str = Field(description="a regular expression the whole value must match")
    required: bool = False
    default: str | None = None
    max_length: int = Field(default=2048, ge=1, le=4096)  # an s3:// URI of a 1,024-byte key fits

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _default_matches(self) -> Self:
        if self.default is not None and not re.fullmatch(self.pattern, self.default):
            raise ValueError(f"default {self.default!r} does not match pattern {self.pattern!r}")
        return self


class ResourceLimit(_Strict):
    default: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _default_within_max(self) -> Self:
        if self.default > self.max:
            raise ValueError(f"default {self.default} is above max {self.max}")
        return self


class Resources(_Strict):
    vcpus: ResourceLimit
    memory_mib: ResourceLimit


class Admission(_Strict):
    max_in_flight_per_tenant: int = Field(default=1000, ge=1)
    max_request_bytes: int = Field(default=16_384, ge=256, le=262_144)
    allowed_tenants: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    max_input_bytes: int | None = Field(default=None, ge=0, description="largest input object accepted")

    def allows(self, tenant: str) -> bool:
        return "*" in self.allowed_tenants or tenant in self.allowed_tenants


class RetryRule(_Strict):
    """How often a failure of one class is retried: each class has a budget of its own."""

    max_retries: int = Field(default=0, ge=0, le=100)
    # SPOT_INTERRUPTED: move to on-demand after this many Spot interruptions, and stay there.
    fallback_to_on_demand_after: int | None = Field(default=None, ge=1)
    # OUT_OF_MEMORY: the next attempt asks for memory times this factor, up to the job type's maximum.
    memory_factor: float | None = Field(default=None, gt=1.0, le=16.0)
    # APPLICATION: only these exit codes are retried (an empty list retries none).
    exit_codes: list[int] | None = None
    # Backoff: False retries at once (a Spot reclaim is not the job's fault).
    backoff: bool = True


class Backoff(_Strict):
    """Exponential backoff with full jitter: delay = random(0, min(cap, base * 2**n))."""

    base_seconds: float = Field(default=10.0, ge=0)
    cap_seconds: float = Field(default=900.0, ge=0)


def _default_retry() -> dict[FailureClass, RetryRule]:
    return {
        FailureClass.SPOT_INTERRUPTED: RetryRule(max_retries=3, fallback_to_on_demand_after=1, backoff=False),
        FailureClass.INFRASTRUCTURE: RetryRule(max_retries=2),
    }


# Batch's backstop (template.yaml, the job queues' JobStateTimeLimitActions): a job RUNNABLE for
# CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY this long is cancelled by the queue itself.
CAPACITY_TIME_LIMIT_SECONDS = 14_400


class CapacityWait(_Strict):
    """How long an attempt may wait for capacity before batchplane ends the wait."""

    # An attempt on Spot not started this long after it was submitted, while Batch gives a CAPACITY:*
    # reason or none, is ended and the job moves to on-demand (using the SPOT_INTERRUPTED budget).
    spot_fallback_after_seconds: int | None = Field(default=None, ge=60, le=CAPACITY_TIME_LIMIT_SECONDS)


class ArrayCoalescing(_Strict):
    """Drops of the type that arrive close together are submitted as one AWS Batch array job
    (service/coalesce.py): one SubmitJob for up to `max_size` children instead of one per job."""

    max_size: int = Field(default=1000, ge=2, le=10_000, description="children per array (Batch: 2..10,000)")
    max_wait_seconds: int = Field(
        default=30, ge=1, le=300, description="a drop waits at most this long for others to join it"
    )


class JobType(_Strict):
    description: str = ""
    job_definition: str = Field(
        min_length=1, description="Batch job definition name, without the stack prefix"
    )
    parameters: dict[str, ParameterRule] = Field(default_factory=dict)
    resources: Resources
    timeout_seconds: int = Field(ge=60, le=14 * 24 * 3600)
    capacity: CapacityPreference = CapacityPreference.SPOT_FIRST
    admission: Admission = Field(default_factory=Admission)
    retry: dict[FailureClass, RetryRule] = Field(default_factory=_default_retry)
    backoff: Backoff = Field(default_factory=Backoff)
    runnable_alert_after_seconds: int = Field(default=1800, ge=60)
    capacity_wait: CapacityWait = Field(default_factory=CapacityWait)
    # An attempt STARTING this long (placed, its container not running) raises one alert.
    starting_alert_after_seconds: int = Field(default=900, ge=60)
    # Absent: never coalesced. File drops of the type are; a REST submission opts in (`"array": true`).
    array: ArrayCoalescing | None = None

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, ParameterRule]) -> dict[str, ParameterRule]:
        for name in value:
            if not re.fullmatch(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name):
                raise ValueError(f"parameter name {name!r} is not a valid Batch parameter name")
        return value

    @field_validator("retry")
    @classmethod
    def _no_retry_for_final_classes(
        cls, value: dict[FailureClass, RetryRule]
    ) -> dict[FailureClass, RetryRule]:
        if FailureClass.CANCELLED in value:
            raise ValueError("a cancelled job is never retried automatically; remove CANCELLED")
        if FailureClass.INPUT_CHANGED in value:
            raise ValueError(
                "a changed input is never retried: a retry reads the same pinned version or ETag, "
                "which S3 no longer holds; remove INPUT_CHANGED"
            )
        if FailureClass.MISCONFIGURATION in value:
            raise ValueError(
                "an attempt Batch can never place is not retried: the next one would ask for the same; "
                "remove MISCONFIGURATION"
            )
        return value

    def rule(self, failure_class: FailureClass) -> RetryRule:
        """The class's rule; a class the policy does not name is not retried."""
        return self.retry.get(failure_class, RetryRule())


FILE_DROP_FIELDS = ("uri", "bucket", "key", "name", "stem", "tenant")


class FileDropRule(_Strict):
    """Objects created under `prefix` (and ending in `suffix`) become jobs of `job_type`.

    The tenant is read from the key where the prefix holds `{tenant}` (`incoming/{tenant}/sort/`), or
    is the rule's fixed `tenant`; either way the prefix must lie in that tenant's input sources
    (checked at load), so a file under one tenant's prefix never becomes another tenant's job.
    Rules are tried in order and the first match wins.
    """

    prefix: str = Field(min_length=1)
    suffix: str = ""
    job_type: str
    tenant: str | None = Field(default=None, description="for a prefix without {tenant}: whose jobs")
    # Values may use {uri}, {bucket}, {key}, {name} (the key's last part), {stem} (name without
    # extension) and {tenant}; e.g. input: "{uri}".
    parameters: dict[str, str] = Field(default_factory=dict)
    min_bytes: int = Field(
        default=1, ge=0, description="smaller objects (by default: empty ones) are rejected"
    )
    priority: int | None = Field(
        default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY, description="the jobs' scheduling priority"
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        problem = prefix_template_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("parameters")
    @classmethod
    def _templates_use_known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        sample = dict.fromkeys(FILE_DROP_FIELDS, "x")
        for name, template in value.items():
            try:
                template.format_map(sample)
            except (KeyError, ValueError, IndexError) as exc:
                raise ValueError(
                    f"parameter {name!r}: {template!r} may only use {{{'}, {'.join(FILE_DROP_FIELDS)}}}"
                ) from exc
        return value

    @model_validator(mode="after")
    def _one_tenant(self) -> Self:
        if (TENANT in self.prefix) == (self.tenant is not None):
            raise ValueError(f"name the tenant either in the prefix ({TENANT}) or as `tenant`, one of them")
        if self.tenant is not None and not TENANT_NAME.fullmatch(self.tenant):
            raise ValueError(f"tenant {self.tenant!r} is not a tenant name ({TENANT_NAME.pattern})")
        return self

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        """The prefix as a regular expression; `{tenant}` takes one key segment."""
        if self.tenant is not None:
            return re.compile(re.escape(self.prefix))
        before, _, after = self.prefix.partition(TENANT)
        return re.compile(re.escape(before) + "(?P<tenant>[^/]+)" + re.escape(after))

    def tenant_of(self, key: str) -> str | None:
        """Whose job the object at `key` becomes under this rule; None when the rule does not match."""
        if not key.endswith(self.suffix):
            return None
        match = self._pattern.match(key)
        if match is None:
            return None
        return self.tenant if self.tenant is not None else match["tenant"]


# An operator: a tenant name (the caller's role or user name), or a principal ARN in which `*` stands
# for any run of characters (an STS session name, say).
_OPERATOR_ARN = re.compile(r"^arn:aws[a-z-]*:(sts|iam)::\d{12}:[A-Za-z0-9_.@+=,/*-]+$")


class Api(_Strict):
    max_body_bytes: int = Field(default=65_536, ge=1024, le=6 * 1024 * 1024)
    default_page_size: int = Field(default=50, ge=1, le=1000)
    max_page_size: int = Field(default=200, ge=1, le=1000)
    operators: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="callers who may read every tenant's jobs (GET /jobs and /summary with tenant= or "
        "all_tenants=true): tenant names, or principal ARNs with `*` wildcards",
    )

    @field_validator("operators")
    @classmethod
    def _operator_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not (TENANT_NAME.fullmatch(name) or _OPERATOR_ARN.fullmatch(name)):
                raise ValueError(f"operator {name!r} is neither a tenant name nor an IAM principal ARN")
        return value

    def is_operator(self, tenant: str, principal: str) -> bool:
        """Whether the caller is one of `operators`: by tenant name, or its principal by ARN pattern."""
        for name in self.operators:
            if name.startswith("arn:"):
                pattern = ".*".join(re.escape(part) for part in name.split("*"))
                if re.fullmatch(pattern, principal):
                    return True
            elif name == tenant:
                return True
        return False


class Costs(_Strict):
    """How attempts are priced: the CPU architecture the compute environments run, and a price table
    that replaces the one shipped in the layer (prices.json)."""

    architecture: str = Field(default="x86_64", description=f"one of {', '.join(ARCHITECTURES)}")
    prices: PriceTable | None = None

    @field_validator("architecture")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ARCHITECTURES:
            raise ValueError(f"{value!r} is not one of {', '.join(ARCHITECTURES)}")
        return value


class Budget(_Strict):
    """A tenant's monthly spend: submissions that would commit more are refused (429, `budget`); one
    alert a month once `alert_at` of it is committed."""

    monthly_usd: float = Field(gt=0, le=10_000_000)
    alert_at: float = Field(default=0.8, gt=0, le=1)


class Budgets(_Strict):
    default: Budget | None = Field(default=None, description="for a tenant not named under `tenants`")
    tenants: dict[str, Budget] = Field(default_factory=dict)

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, Budget]) -> dict[str, Budget]:
        return tenant_keyed(value)

    def of(self, tenant: str) -> Budget | None:
        return self.tenants.get(tenant, self.default)


class PolicyDocument(_Strict):
    version: int = Field(ge=1, le=1)
    api: Api = Field(default_factory=Api)
    job_types: dict[str, JobType] = Field(min_length=1)
    inputs: InputSources = Field(default_factory=InputSources)
    file_drop: list[FileDropRule] = Field(default_factory=list)
    scheduling: Scheduling = Field(default_factory=Scheduling)
    costs: Costs = Field(default_factory=Costs)
    budgets: Budgets = Field(default_factory=Budgets)

    @field_validator("job_types")
    @classmethod
    def _job_type_names(cls, value: dict[str, JobType]) -> dict[str, JobType]:
        for name in value:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"job type name {name!r} must match {_NAME}")
        return value

    def dangling_references(self) -> list[tuple[str, str]]:
        """(field path, reason) for each file-drop rule naming a job type the policy lacks."""
        return [
            (f"file_drop.{index}.job_type", f"{rule.job_type!r} is not a job type of this policy")
            for index, rule in enumerate(self.file_drop)
            if rule.job_type not in self.job_types
        ]

    def priorities_out_of_range(self) -> list[tuple[str, str]]:
        """(field path, reason) for each file-drop rule whose priority a tenant it serves may not ask for:
        its every drop would be rejected. A {tenant} rule serves the default and every named tenant."""
        scheduling = self.scheduling
        problems = []
        for index, rule in enumerate(self.file_drop):
            if rule.priority is None:
                continue
            served = [rule.tenant] if rule.tenant else list(scheduling.tenants)
            ranges = [(f"tenant {t}", scheduling.placement(t).priority) for t in served]
            if not rule.tenant:
                ranges.insert(0, ("the default", scheduling.default.priority))
            outside = [(whose, r) for whose, r in ranges if not r.allows(rule.priority)]
            if outside:
                whose, allowed = outside[0]
                problems.append(
                    (
                        f"file_drop.{index}.priority",
                        f"{rule.priority} is outside {allowed.min}..{allowed.max}, the range of {whose}",
                    )
                )
        return problems

    def boundary_breaches(self) -> list[tuple[str, str]]:
        """(field path, reason) for each file-drop rule whose prefix is not inside its tenant's input
        sources in the ingest bucket: a file there could make one tenant's object another's job."""
        problems = []
        for index, rule in enumerate(self.file_drop):
            if not self.inputs.covers(INGEST, rule.prefix, rule.tenant):
                whose = f"tenant {rule.tenant}" if rule.tenant else "each tenant"
                areas = ", ".join(
                    str(a) for a in self.inputs.areas_of(rule.tenant or TENANT) if a.bucket == INGEST
                )
                problems.append(
                    (
                        f"file_drop.{index}.prefix",
                        f"{rule.prefix!r} is not inside an input source of {whose} in the ingest bucket "
                        f"({areas or 'none'}); a file there could be another tenant's",
                    )
                )
        return problems
