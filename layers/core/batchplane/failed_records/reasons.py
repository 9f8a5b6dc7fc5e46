"""The reason a record was given up on, as a log line gives it: the exception's type and message,
never the payload."""

from __future__ import annotations

from pydantic import ValidationError

# Enough for any of our errors' messages; a longer one is cut rather than flood the log.
REASON_LIMIT = 500


def reason_of(error: BaseException) -> str:
    """The exception's type and message. A validation error is told by field and problem, without the
    value it refused: that value is the payload (pydantic's own message quotes it)."""
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(whole)'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False, include_context=False)
        )
        text = f"{error.error_count()} validation error(s) for {error.title}: {problems}"
    else:
        text = str(error)
    reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"
