"""Page tokens (api/page_tokens.py): signed for one listing, opened only by it."""

from __future__ import annotations

import re

import pytest

from batchplane.api.page_tokens import TOKEN_PATTERN, PageTokens
from batchplane.errors import InvalidRequest

LISTING = ("jobs", "analytics", "", "")
STORE_TOKEN = "eyJnc2kxcGsiOiAiVEVOQU5UI2FuYWx5dGljcyJ9"


class Key:
    """A key that counts how often it was asked for."""

    def __init__(self, value: bytes = b"k" * 64) -> None:
        self.value = value
        self.reads = 0

    def __call__(self) -> bytes:
        self.reads += 1
        return self.value


def test_a_signed_token_opens_to_the_stores_token_in_its_own_listing() -> None:
    tokens = PageTokens(Key())

    signed = tokens.sign(LISTING, STORE_TOKEN)

    assert signed is not None and re.fullmatch(TOKEN_PATTERN, signed)
    assert tokens.open(LISTING, signed) == STORE_TOKEN


@pytest.mark.parametrize(
    "other",
    [
        ("jobs", "finance", "", ""),  # another tenant
        ("jobs", "analytics", "QUEUED", ""),  # another filter
        ("jobs", "analytics", "", "sort-large"),
        ("artifacts", "analytics", "", ""),  # another route
        ("jobs", "analytics", "", "", ""),
    ],
)
def test_a_token_moved_to_another_listing_is_refused(other: tuple[str, ...]) -> None:
    tokens = PageTokens(Key())
    signed = tokens.sign(LISTING, STORE_TOKEN)

    with pytest.raises(InvalidRequest) as refused:
        tokens.open(other, signed)

    assert [d.field for d in refused.value.details] == ["next_token"]


@pytest.mark.parametrize(
    "forged", [STORE_TOKEN, f"{STORE_TOKEN}.", f".{'A' * 43}", f"{STORE_TOKEN}.{'A' * 43}"]
)
def test_a_token_not_signed_under_the_key_is_refused(forged: str) -> None:
    with pytest.raises(InvalidRequest):
        PageTokens(Key()).open(LISTING, forged)


def test_another_key_opens_nothing() -> None:
    signed = PageTokens(Key(b"one")).sign(LISTING, STORE_TOKEN)

    with pytest.raises(InvalidRequest):
        PageTokens(Key(b"two")).open(LISTING, signed)


def test_no_token_never_reads_the_key() -> None:
    key = Key()
    tokens = PageTokens(key)

    assert (tokens.sign(LISTING, None), tokens.open(LISTING, None)) == (None, None)
    assert key.reads == 0
