"""The `batchplane` command's argument types: each turns a bad value into a usage error (exit 2) that
names the value and what was expected."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from batchplane_tools.cli.statuses import STATUSES
from batchplane_tools.local.invoker import Concurrency, parse_concurrency


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def concurrency(text: str) -> Concurrency:
    try:
        return parse_concurrency(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def status(text: str) -> str:
    upper = text.strip().upper()
    if upper not in STATUSES:
        raise argparse.ArgumentTypeError(f"unknown status {text!r} (one of {', '.join(STATUSES)})")
    return upper


def statuses(text: str) -> list[str]:
    return [status(part) for part in text.split(",") if part.strip()]


def instant(text: str) -> str:
    """An ISO 8601 time as the API takes it; without a zone, UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"not a month YYYY-MM: {text!r}")
    return text


def date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD or ISO 8601): {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
