"""The request body, checked before anything parses it: its size as bytes (after API Gateway's
base64, if it used it), its media type, and JSON within bounds that keep the parser's cost flat.

Python's json module recurses once per nesting level and converts integers of any length, so a
30,000-deep array or a 5,000-digit number costs a RecursionError or ValueError in the parser instead
of a 400. Nothing here is a schema: the route's model says what the JSON must hold.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from batchplane.errors import ErrorDetail

JSON_MEDIA_TYPE = "application/json"
# POST /jobs's body is three levels deep (the body, `inputs`, an input); anything far deeper is not ours.
MAX_DEPTH = 16
# A JSON number's literal, sign and exponent included: every double prints in 24 characters.
MAX_NUMBER_CHARS = 32

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


@dataclass
class BodyRefused(Exception):
    """The body is refused before any route sees it: the status and the error JSON's parts."""

    status: int
    code: str
    message: str
    details: list[ErrorDetail]


class OutOfBounds(json.JSONDecodeError):
    """JSON, maybe, but deeper or with longer numbers than the API reads."""


def _malformed(reason: str, message: str = "the body is not valid JSON") -> BodyRefused:
    return BodyRefused(400, "malformed_json", message, [ErrorDetail("body", reason)])


def raw_body(event: dict[str, Any]) -> bytes:
    """The body as the client sent it: API Gateway base64-encodes binary media types."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed("isBase64Encoded, but not valid base64") from exc


def check_size(raw: bytes, limit: int) -> None:
    if len(raw) > limit:
        raise BodyRefused(
            413,
            "request_too_large",
            "request body too large",
            [ErrorDetail("body", f"{len(raw)} bytes is over {limit}")],
        )


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header; HTTP header names are case-insensitive, and API Gateway keeps the client's."""
    wanted = name.lower()
    return next((str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), None)


def check_media_type(content_type: str | None) -> None:
    """JSON, however the client spells it (`Application/JSON; charset=UTF-8`). No Content-Type at all
    is read as JSON, as API Gateway's REST APIs read it."""
    if content_type is None or not content_type.strip():
        return
    media_type, *parameters = (part.strip() for part in content_type.split(";"))
    if media_type.lower() != JSON_MEDIA_TYPE:
        raise BodyRefused(
            415,
            "unsupported_media_type",
            f"the body must be {JSON_MEDIA_TYPE}",
            [ErrorDetail("Content-Type", f"{media_type or '(empty)'} is not {JSON_MEDIA_TYPE}")],
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise BodyRefused(
                415,
                "unsupported_media_type",
                "JSON is read as UTF-8",
                [ErrorDetail("Content-Type", f"charset {charset} is not utf-8")],
            )


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, strings skipped; stops counting past MAX_DEPTH."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
    return deepest


def _number(literal: str) -> int | float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(literal)} characters; at most {MAX_NUMBER_CHARS}")
    value: int | float = float(literal) if any(c in literal for c in ".eE") else int(literal)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{literal} is out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """json.loads within bounds; anything outside them is a JSONDecodeError saying why, so Powertools'
    body validation reports it as it reports any other malformed body."""
    if _depth(text) > MAX_DEPTH:
        raise OutOfBounds(f"nested deeper than {MAX_DEPTH} levels", text, 0)
    try:
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # raised by the hooks above, or a parser's limit
        raise OutOfBounds(str(exc), text, 0) from exc


def readable(event: dict[str, Any], *, limit: int, reads_body: bool) -> dict[str, Any]:
    """The event with a body its route can read: checked, decoded from base64, and its Content-Type
    spelled as the resolver matches it. Raises BodyRefused with the status and the reason.

    Every route refuses a body over `limit`; only a route that reads its body checks the rest (the
    others ignore what a client sends them)."""
    if not event.get("body"):
        return event
    raw = raw_body(event)
    check_size(raw, limit)
    if not reads_body:
        return event
    check_media_type(header(event, "Content-Type"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 at byte {exc.start}") from exc
    try:
        loads(text)
    except OutOfBounds as exc:
        raise _malformed(exc.msg, "the body is JSON beyond the API's limits") from exc
    except json.JSONDecodeError as exc:
        raise _malformed(f"{exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return {
        **event,
        "body": text,
        "isBase64Encoded": False,
        "headers": {**headers, "Content-Type": JSON_MEDIA_TYPE},
        "multiValueHeaders": {**multi, "Content-Type": [JSON_MEDIA_TYPE]},
    }
