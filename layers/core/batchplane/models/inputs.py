"""The policy's `inputs` section: where each tenant's job inputs may come from.

A source is a bucket (its name, or `@ingest` / `@artifacts`: this stack's ingest and artifact
buckets) and a key prefix. The shared sources hold `{tenant}` as a whole key segment, so each
tenant's area is its own: `incoming/{tenant}/` is `incoming/analytics/` for analytics, never a
prefix of `incoming/analytics-eu/`. A tenant may also have sources of its own (a bucket it owns).
Validated at load: no source covers two tenants' areas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from typing import Self, TypeVar

from pydantic import ConfigDict, Field, field_validator, model_validator

from batchplane.models.base import Model
from batchplane.models.s3_uri import bucket_name_problem, path_problem

TENANT = "{tenant}"
INGEST = "@ingest"
ARTIFACTS = "@artifacts"
OWN_OUTPUTS = "outputs/{tenant}/"  # the only part of the artifact bucket a tenant may read
# A tenant's name, wherever it comes from (the caller's identity, a key's segment): one key segment.
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+=-]{0,127}$")


_V = TypeVar("_V")


def tenant_keyed(value: dict[str, _V]) -> dict[str, _V]:
    """A policy section keyed by tenant: each key must be a tenant name (a field validator's body)."""
    for name in value:
        if not TENANT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a tenant name ({TENANT_NAME.pattern})")
    return value


class _Strict(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)


def prefix_template_problem(prefix: str) -> str | None:
    """Why a key prefix that may hold `{tenant}` is unsafe to compare keys with; None when it is fine."""
    if not prefix:
        return None  # the whole bucket
    segments = prefix.split("/")
    if any(TENANT in segment and segment != TENANT for segment in segments):
        return f"{TENANT} must be a whole key segment, e.g. incoming/{TENANT}/"
    if prefix.count(TENANT) > 1:
        return f"{TENANT} may appear once"
    plain = prefix.replace(TENANT, "tenant")
    if "{" in plain or "}" in plain:
        return f"only {TENANT} may be used in a prefix"
    return path_problem(plain, "prefix")


@dataclass(frozen=True)
class Area:
    """A bucket (a name or a reference) and a key prefix: where one tenant's inputs may be."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class InputSource(_Strict):
    bucket: str = Field(description="a bucket name, or @ingest / @artifacts (this stack's buckets)")
    prefix: str = Field(default="", description="a key prefix ending in '/', or '' for the whole bucket")

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        problem = None if value in (INGEST, ARTIFACTS) else bucket_name_problem(value)
        if problem:
            raise ValueError(f"{problem}; or use {INGEST} / {ARTIFACTS}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not value.endswith("/"):
            raise ValueError(f"{value!r} must end in '/' (or be '' for the whole bucket), or it covers more")
        problem = prefix_template_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def templated(self) -> bool:
        return TENANT in self.prefix

    @property
    def before_tenant(self) -> str:
        return self.prefix.partition(TENANT)[0]

    def area(self, tenant: str) -> Area:
        return Area(self.bucket, self.prefix.replace(TENANT, tenant))

    def owner(self, key: str) -> str | None:
        """The tenant whose area of this (shared) source `key` is in: the segment where `{tenant}` is."""
        if not self.templated or not key.startswith(self.before_tenant):
            return None
        segment, slash, _ = key[len(self.before_tenant) :].partition("/")
        return segment if slash else None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _default_sources() -> list[InputSource]:
    return [
        InputSource(bucket=INGEST, prefix=f"incoming/{TENANT}/"),
        InputSource(bucket=ARTIFACTS, prefix=OWN_OUTPUTS),
    ]


class InputSources(_Strict):
    """Shared sources (each tenant's own prefix of them) and the sources particular tenants own."""

    sources: list[InputSource] = Field(default_factory=_default_sources)
    tenants: dict[str, list[InputSource]] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _shared_are_per_tenant(cls, value: list[InputSource]) -> list[InputSource]:
        for index, source in enumerate(value):
            if not source.templated:
                raise ValueError(
                    f"sources.{index}: {source} holds no {TENANT}: every tenant could read every other's "
                    "data there (name a tenant's own bucket under `tenants`)"
                )
            if source.bucket == ARTIFACTS and not source.prefix.startswith(OWN_OUTPUTS):
                raise ValueError(f"sources.{index}: in {ARTIFACTS}, a tenant reads under {OWN_OUTPUTS} only")
        for a, b in combinations(value, 2):
            nested = a.before_tenant.startswith(b.before_tenant) or b.before_tenant.startswith(
                a.before_tenant
            )
            if a.bucket == b.bucket and a.before_tenant != b.before_tenant and nested:
                raise ValueError(f"{a} and {b} overlap: one tenant's area of one is another's of the other")
        return value

    @model_validator(mode="after")
    def _tenants_own_their_sources(self) -> Self:
        for tenant, own in self.tenants.items():
            if not TENANT_NAME.fullmatch(tenant):
                raise ValueError(f"tenants.{tenant}: not a tenant name ({TENANT_NAME.pattern})")
            for index, source in enumerate(own):
                problem = self._not_own(tenant, source)
                if problem:
                    raise ValueError(f"tenants.{tenant}.{index}: {source} {problem}")
        extras = [(tenant, source) for tenant, own in self.tenants.items() for source in own]
        for (t1, s1), (t2, s2) in combinations(extras, 2):
            if (
                t1 != t2
                and s1.bucket == s2.bucket
                and (s1.prefix.startswith(s2.prefix) or s2.prefix.startswith(s1.prefix))
            ):
                raise ValueError(f"tenants: {s1} of {t1} and {s2} of {t2} overlap")
        return self

    def _not_own(self, tenant: str, source: InputSource) -> str | None:
        """Why a tenant's own source would reach another tenant's area; None when it does not."""
        if source.templated:
            return f"is a tenant's own source: write the prefix without {TENANT}"
        if source.bucket == ARTIFACTS and not source.prefix.startswith(f"outputs/{tenant}/"):
            return f"reaches outputs that are not {tenant}'s"
        for shared in self.sources:
            if shared.bucket != source.bucket:
                continue
            if shared.before_tenant.startswith(source.prefix):
                return f"covers every tenant's area of {shared}"
            owner = shared.owner(source.prefix)
            if owner is not None and owner != tenant:
                return f"is inside tenant {owner}'s area of {shared}"
        return None

    def areas_of(self, tenant: str) -> list[Area]:
        """Where the tenant's inputs may be: its area of each shared source, then its own sources."""
        own = self.tenants.get(tenant, [])
        return [s.area(tenant) for s in self.sources] + [Area(s.bucket, s.prefix) for s in own]

    def owner_of(self, bucket: str, key: str) -> str | None:
        """The tenant whose area of a shared source in `bucket` holds `key`, if any."""
        return next((o for s in self.sources if s.bucket == bucket and (o := s.owner(key))), None)

    def covers(self, bucket: str, prefix: str, tenant: str | None) -> bool:
        """Whether every key under `prefix` in `bucket` is the tenant's input; tenant None: `prefix`
        holds `{tenant}`, and it must lie in each tenant's own area of a shared source."""
        if tenant is None:
            return any(s.bucket == bucket and prefix.startswith(s.prefix) for s in self.sources)
        return any(a.bucket == bucket and prefix.startswith(a.prefix) for a in self.areas_of(tenant))
