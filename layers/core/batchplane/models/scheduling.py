"""The policy's `scheduling` section: Batch fair share between tenants.

Both job queues carry a fair-share scheduling policy (template.yaml, `SchedulingPolicy`). Every
SubmitJob names a share identifier (a queue with a scheduling policy refuses one without) and a
scheduling priority. Batch gives each share compute by its weight (a LOWER weight factor gets MORE:
0.5 gets twice what 1.0 gets) and the usage it had within `share_decay_seconds`; within a share, a
higher priority starts first. Each tenant is a share of its own unless the policy names another,
so one tenant's flood no longer sits ahead of everyone else's jobs.
"""

from __future__ import annotations

import hashlib
import re
from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchplane.models.base import Model
from batchplane.models.inputs import tenant_keyed

# SubmitJob's shareIdentifier and ShareAttributes' (without its wildcard): up to 255 alphanumerics.
SHARE_IDENTIFIER = re.compile(r"^[A-Za-z0-9]{1,255}$")
# The default share spelling: each tenant a share of its own.
TENANT_SHARE = "{tenant}"
MIN_PRIORITY, MAX_PRIORITY = 0, 9999  # SubmitJob's schedulingPriorityOverride
MIN_WEIGHT, MAX_WEIGHT = 0.0001, 999.9999  # ShareAttributes' weightFactor
BATCH_DEFAULT_WEIGHT = 1.0  # what Batch gives a share identifier its policy does not list
MAX_SHARE_DISTRIBUTION = 500  # a queue's active share identifiers; the distribution lists no more


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


def share_problem(share: str) -> str | None:
    if SHARE_IDENTIFIER.fullmatch(share):
        return None
    return f"{share!r} is not a Batch share identifier (1 to 255 letters and digits, nothing else)"


def tenant_share(tenant: str) -> str:
    """The share identifier a tenant gets by default: its name when that is one, else its letters and
    digits and a hash of the whole name (tenant names may hold `_.@+=-`, share identifiers may not;
    the hash keeps `a-b` and `ab` apart)."""
    if SHARE_IDENTIFIER.fullmatch(tenant):
        return tenant
    letters = "".join(c for c in tenant if c.isascii() and c.isalnum())[:200]
    return f"{letters}x{hashlib.sha256(tenant.encode()).hexdigest()[:16]}"


class PriorityRange(_Strict):
    """The scheduling priorities a tenant may ask for, and the one it gets when it asks for none."""

    min: int = Field(default=MIN_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    max: int = Field(default=MAX_PRIORITY, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    default: int = Field(ge=MIN_PRIORITY, le=MAX_PRIORITY)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min <= self.default <= self.max:
            raise ValueError(f"needs min <= default <= max, not {self.min}, {self.default}, {self.max}")
        return self

    def allows(self, priority: int) -> bool:
        return self.min <= priority <= self.max


class TenantScheduling(_Strict):
    """A tenant's share, weight and priority range; what it leaves out comes from `default`."""

    share: str | None = Field(default=None, description="a share identifier; default: the tenant's own")
    weight: float | None = Field(default=None, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    priority: PriorityRange | None = None

    @model_validator(mode="after")
    def _share(self) -> Self:
        problem = None if self.share is None else share_problem(self.share)
        if problem:
            raise ValueError(problem)
        return self


class DefaultScheduling(_Strict):
    share: str = Field(default=TENANT_SHARE, description="{tenant}: each its own; or one share for all")
    weight: float = Field(default=BATCH_DEFAULT_WEIGHT, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    priority: PriorityRange = Field(default_factory=lambda: PriorityRange(min=0, max=100, default=50))

    @model_validator(mode="after")
    def _share(self) -> Self:
        if self.share == TENANT_SHARE:
            # Batch lists no pattern for "any other share": an unlisted one weighs 1.0, whatever we say.
            if self.weight != BATCH_DEFAULT_WEIGHT:
                raise ValueError(
                    "with share {tenant}, weight must be 1.0: Batch weighs every share identifier its "
                    "policy does not list 1.0; name one share for all other tenants to weigh them"
                )
            return self
        problem = share_problem(self.share)
        if problem:
            raise ValueError(problem)
        return self


class Placement(_Strict):
    """Where a tenant's jobs go in the fair-share queue."""

    share: str
    weight: float
    priority: PriorityRange


class Scheduling(_Strict):
    share_decay_seconds: int = Field(
        default=3600, ge=0, le=604_800, description="how long past usage counts; 0: Batch's 600 s"
    )
    compute_reservation: int = Field(
        default=0, ge=0, le=99, description="percent of vCPUs held for shares not active yet"
    )
    default: DefaultScheduling = Field(default_factory=DefaultScheduling)
    tenants: dict[str, TenantScheduling] = Field(default_factory=dict)

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, TenantScheduling]) -> dict[str, TenantScheduling]:
        return tenant_keyed(value)

    @model_validator(mode="after")
    def _one_weight_a_share(self) -> Self:
        self.share_distribution()  # raises on a share given two weights
        return self

    def placement(self, tenant: str) -> Placement:
        """The tenant's share, weight and priority range; a tenant the policy does not name gets
        the default."""
        own = self.tenants.get(tenant, TenantScheduling())
        if own.share is not None:
            share = own.share
        elif self.default.share == TENANT_SHARE or tenant in self.tenants:
            share = tenant_share(tenant)  # a named tenant without a share is a share of its own
        else:
            share = self.default.share
        return Placement(
            share=share,
            weight=own.weight if own.weight is not None else self.default.weight,
            priority=own.priority or self.default.priority,
        )

    def share_distribution(self) -> list[tuple[str, float]]:
        """ShareDistribution as the template must hold it: each share identifier the policy weighs,
        sorted; raises ValueError for a share given two weights."""
        weights: dict[str, tuple[float, str]] = {}
        named = [(f"tenants.{t}", self.placement(t)) for t in self.tenants]
        if self.default.share != TENANT_SHARE:
            default = self.default
            named.append(
                ("default", Placement(share=default.share, weight=default.weight, priority=default.priority))
            )
        for where, placement in named:
            earlier = weights.setdefault(placement.share, (placement.weight, where))
            if earlier[0] != placement.weight:
                raise ValueError(
                    f"share {placement.share!r} weighs {earlier[0]} in {earlier[1]} and "
                    f"{placement.weight} in {where}: a share has one weight"
                )
        if len(weights) > MAX_SHARE_DISTRIBUTION:
            raise ValueError(f"{len(weights)} shares: a queue takes at most {MAX_SHARE_DISTRIBUTION}")
        return sorted((share, weight) for share, (weight, _) in weights.items())
