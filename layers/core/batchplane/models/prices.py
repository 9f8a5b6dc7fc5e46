"""A price table: what a vCPU-hour and a GB-hour of memory cost, per region and CPU architecture,
with where the figures come from and when they were read. Pure values; policy/cost.py prices with it.

The table shipped in the layer (`prices.json`, beside policy.yaml) holds AWS Fargate's on-demand
prices; a deployment replaces it with the policy's `costs.prices` (its own rates, an EC2-derived
rate, another region).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchplane.models.base import Model

ARCHITECTURES = ("x86_64", "arm64")


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Strict):
    """On-demand price of one vCPU for an hour and of one GB (1,024 MiB) of memory for an hour."""

    vcpu_hour: float = Field(ge=0, le=100)
    gb_hour: float = Field(ge=0, le=100)


class PriceTable(_Strict):
    source: str = Field(min_length=1, description="where the figures come from (a URL)")
    as_of: date = Field(description="when they were read")
    currency: str = Field(default="USD", pattern=r"^USD$")
    note: str = ""
    spot_discount: float = Field(ge=0, lt=1, description="Spot's price is on-demand's x (1 - this)")
    minimum_seconds: int = Field(
        default=60, ge=0, le=3600, description="an attempt that ran is billed at least this"
    )
    fallback_region: str | None = Field(default=None, description="rates for a region the table lacks")
    regions: dict[str, dict[str, Rate]] = Field(min_length=1)

    @field_validator("regions")
    @classmethod
    def _names(cls, value: dict[str, dict[str, Rate]]) -> dict[str, dict[str, Rate]]:
        for region, rates in value.items():
            if not re.fullmatch(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
                raise ValueError(f"{region!r} is not an AWS region name")
            for arch in rates:
                if arch not in ARCHITECTURES:
                    raise ValueError(f"{region}: {arch!r} is not one of {', '.join(ARCHITECTURES)}")
        return value

    @model_validator(mode="after")
    def _fallback_known(self) -> Self:
        if self.fallback_region is not None and self.fallback_region not in self.regions:
            raise ValueError(f"fallback_region {self.fallback_region!r} is not in regions")
        return self

    def rate(self, region: str, architecture: str) -> tuple[str, Rate] | None:
        """The region whose rates apply (the fallback for one the table lacks) and its rate."""
        used = region if region in self.regions else self.fallback_region
        if used is None:
            return None
        rate = self.regions[used].get(architecture)
        return (used, rate) if rate is not None else None
