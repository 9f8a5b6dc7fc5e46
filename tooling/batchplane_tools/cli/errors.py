"""What can go wrong in a `batchplane` command, each shown to the user as one line on stderr.

The exit status says whose fault it is: 1 when the API (or S3) refused, 2 when it could not be reached
or the command cannot be carried out as asked.
"""

from __future__ import annotations

from typing import Any


class CliError(Exception):
    """An error shown to the user as one line; `exit_code` is what the command returns."""

    exit_code = 2


class ConfigError(CliError):
    """The command cannot be carried out as asked: a missing option, file, region or credentials."""


class CommandFailed(CliError):
    """The command was carried out and refused, e.g. S3 would not take an upload."""

    exit_code = 1


class ApiError(CliError):
    """The API answered with an error: `{"error": {"code", "message", "details"}}`."""

    exit_code = 1

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        super().__init__(status, code, message, self.details)

    def __str__(self) -> str:
        text = f"{self.status} {self.code}: {self.message}"
        if self.details:
            parts = [f"{d.get('field', '?')}: {d.get('reason', '?')}" for d in self.details]
            text += f" ({'; '.join(parts)})"
        return text


class Unreachable(CliError):
    """Nothing usable answered at `url`: refused, timed out, unknown host, TLS error or no local stack."""

    def __init__(self, url: str, why: str, *, hint: str | None = None, what: str = "the API"):
        self.url = url
        self.why = why
        self.hint = hint
        self.what = what
        super().__init__(url, why)

    def __str__(self) -> str:
        text = f"cannot reach {self.what} at {self.url} ({self.why})."
        return f"{text} {self.hint}" if self.hint else text
