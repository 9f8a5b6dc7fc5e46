"""Domain errors. Each names what went wrong; the API maps them to HTTP in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorDetail:
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


@dataclass
class BatchplaneError(Exception):
    message: str
    details: list[ErrorDetail] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class InvalidRequest(BatchplaneError):
    """The request breaks the job type's rules (unknown job type, bad parameter, resources over max)."""


class RequestTooLarge(BatchplaneError):
    """The request is larger than its limit."""


class TenantNotAllowed(BatchplaneError):
    """The policy does not let this tenant run this job type."""


@dataclass
class QuotaExceeded(BatchplaneError):
    """The tenant already has as many jobs of this type in flight as the policy allows, or jobs of the
    type held ahead (`held_ahead`: a slot may be free, but it is theirs first)."""

    held_ahead: int = 0


class BudgetExceeded(BatchplaneError):
    """The job could take the tenant's month past its budget (policy `budgets`)."""


class IdempotencyConflict(BatchplaneError):
    """The Idempotency-Key was used before with a different request."""


class JobNotFound(BatchplaneError):
    """No such job for this tenant (another tenant's job is not found either)."""


class InvalidTransition(BatchplaneError):
    """The job's state does not allow the operation (cancel a finished job, retry a running one)."""


class ConcurrentUpdate(BatchplaneError):
    """Another writer changed the job first; the caller may re-read and try again."""


class PolicyError(BatchplaneError):
    """The policy document is invalid; nothing of it is applied."""
