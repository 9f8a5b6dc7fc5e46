"""UTC timestamps in the one ISO 8601 form batchplane stores and returns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_iso(value: datetime) -> str:
    """Fixed width and always UTC, so the strings sort as the instants do."""
    return value.astimezone(UTC).strftime(ISO_FORMAT)


def from_epoch_ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


UtcDatetime = Annotated[datetime, PlainSerializer(to_iso, return_type=str, when_used="json")]
