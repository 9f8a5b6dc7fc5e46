"""Page tokens a client can neither forge nor move to another listing.

A page token is the store's token (the next page's DynamoDB key, base64url JSON) and an
HMAC-SHA256 over it and the listing it belongs to (route, tenant, filters), under the stack's key
(template.yaml `PageTokenSecret`). A token whose MAC does not verify is refused with 422 before
anything is read: no forged key ever reaches DynamoDB, and a token from another tenant's, job's or
filter's listing does not verify there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

from batchplane.errors import ErrorDetail, InvalidRequest

MAC_CHARS = 43  # 32 bytes of HMAC-SHA256, base64url without padding
# What the route's next_token parameter accepts; the MAC is checked after this.
TOKEN_PATTERN = rf"^[A-Za-z0-9_-]+={{0,2}}\.[A-Za-z0-9_-]{{{MAC_CHARS}}}$"


def _bad_token() -> InvalidRequest:
    return InvalidRequest("invalid next_token", [ErrorDetail("next_token", "not a token from this listing")])


class PageTokens:
    """Signs the store's tokens for a listing and opens them again. `key` is called on the first
    token signed or opened, so a request without one never reads the key."""

    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def _mac(self, listing: tuple[str, ...], payload: str) -> str:
        message = json.dumps([*listing, payload], separators=(",", ":")).encode()
        digest = hmac.new(self._key(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, listing: tuple[str, ...], token: str | None) -> str | None:
        """The store's token, signed for `listing`; None (no further page) stays None."""
        return None if token is None else f"{token}.{self._mac(listing, token)}"

    def open(self, listing: tuple[str, ...], token: str | None) -> str | None:
        """The store's token inside a signed one, if it was signed for this `listing`."""
        if token is None:
            return None
        payload, dot, mac = token.rpartition(".")
        if not dot or not payload or not hmac.compare_digest(mac, self._mac(listing, payload)):
            raise _bad_token()
        return payload
