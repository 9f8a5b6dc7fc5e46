"""Loading the policy document: all of it validates, or none of it is used."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from batchplane.errors import ErrorDetail, PolicyError
from batchplane.models.policy import PolicyDocument


def _invalid(source: str, details: list[ErrorDetail]) -> PolicyError:
    listing = "; ".join(f"{d.field}: {d.reason}" for d in details)
    return PolicyError(f"{source} is invalid: {listing}", details)


def parse_policy(data: Any, source: str = "policy") -> PolicyDocument:
    try:
        policy = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        details = [
            ErrorDetail(field=".".join(str(p) for p in err["loc"]) or "(document)", reason=err["msg"])
            for err in exc.errors()
        ]
        raise _invalid(source, details) from exc
    dangling = policy.dangling_references() + policy.boundary_breaches() + policy.priorities_out_of_range()
    if dangling:
        raise _invalid(source, [ErrorDetail(field, reason) for field, reason in dangling])
    return policy


def load_policy_text(text: str, source: str = "policy") -> PolicyDocument:
    import yaml  # only when a policy is read, not at every handler's import

    # libyaml's loader reads the policy in about 1 ms, PyYAML's own in 8 (at every cold start). They
    # build the same values; only libyaml accepts tabs as spacing, so a text with a tab gets PyYAML's.
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and "\t" not in text:
        try:
            data = yaml.load(text, Loader=fast)
        except (yaml.YAMLError, UnicodeError):
            pass  # PyYAML's own loader quotes the offending line in its message: read again for it
        else:
            return parse_policy(data, source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source} is not valid YAML: {exc}") from exc
    return parse_policy(data, source)


@lru_cache(maxsize=4)
def load_policy(path: Path) -> PolicyDocument:
    """Read and validate the policy file once per process (and per path)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy {path}: {exc.strerror}") from exc
    return load_policy_text(text, str(path))
