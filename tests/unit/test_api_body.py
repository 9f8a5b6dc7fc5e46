"""The request body's bounds (api/body.py): what the parser is handed, and what is refused before."""

from __future__ import annotations

import json

import pytest

from batchplane.api.body import MAX_DEPTH, BodyRefused, OutOfBounds, check_media_type, loads, readable


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def test_json_up_to_the_depth_bound_is_read_and_one_level_more_is_not() -> None:
    assert loads(nested(MAX_DEPTH)) == json.loads(nested(MAX_DEPTH))

    with pytest.raises(OutOfBounds, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(nested(MAX_DEPTH + 1))


def test_brackets_inside_strings_are_not_nesting() -> None:
    # Given a shallow document whose strings hold brackets and escaped quotes
    text = json.dumps({"a": "[[[[" * 50 + '\\"{{{{' * 50, "b": ["]]]]"]})

    # Then it is read as what it is
    assert loads(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9" * 4301, "a number of 4301 characters"),
        ("0." + "1" * 40, "a number of 42 characters"),
        ("1e400", "1e400 is out of range"),
        ("-1e400", "-1e400 is out of range"),
        ("NaN", "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
    ],
)
def test_numbers_the_api_never_takes_are_refused_before_they_are_converted(text: str, reason: str) -> None:
    with pytest.raises(OutOfBounds, match=reason):
        loads(text)


def test_ordinary_numbers_are_numbers() -> None:
    assert loads('{"vcpus": 2, "memory_mib": 1048576, "f": -1.5e3}') == {
        "vcpus": 2,
        "memory_mib": 1048576,
        "f": -1500.0,
    }


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        "application/json;charset=utf8",
    ],
)
def test_json_media_types_pass_however_spelled(content_type: str | None) -> None:
    check_media_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("text/plain", "text/plain is not application/json"),
        ("multipart/form-data", "multipart/form-data is not application/json"),
        ("application/json-seq", "application/json-seq is not application/json"),
        (";charset=utf-8", "(empty) is not application/json"),
        ("application/json; charset=iso-8859-1", "charset iso-8859-1 is not utf-8"),
    ],
)
def test_other_media_types_are_a_415(content_type: str, reason: str) -> None:
    with pytest.raises(BodyRefused) as refused:
        check_media_type(content_type)

    assert refused.value.status == 415
    assert [(d.field, d.reason) for d in refused.value.details] == [("Content-Type", reason)]


def test_a_route_that_reads_no_body_checks_only_its_size() -> None:
    # Given a body that is not JSON, sent to a route that ignores bodies
    event = {"body": "<xml/>", "headers": {"Content-Type": "application/xml"}, "isBase64Encoded": False}

    # Then it passes untouched, unless it is over the API's limit
    assert readable(event, limit=100, reads_body=False) is event
    with pytest.raises(BodyRefused) as refused:
        readable(event, limit=5, reads_body=False)
    assert refused.value.status == 413


def test_the_resolver_gets_the_decoded_body_under_the_media_type_it_matches() -> None:
    # Given a base64-encoded JSON body sent as `Application/JSON; charset=UTF-8`
    event = {
        "body": "eyJhIjogMX0=",
        "isBase64Encoded": True,
        "headers": {"content-type": "Application/JSON; charset=UTF-8"},
        "multiValueHeaders": {"content-type": ["Application/JSON; charset=UTF-8"]},
    }

    # When it is made readable
    made = readable(event, limit=1000, reads_body=True)

    # Then the body is text, and Content-Type is spelled as Powertools' parser matches it
    assert (made["body"], made["isBase64Encoded"]) == ('{"a": 1}', False)
    assert made["headers"] == {"Content-Type": "application/json"}
    assert made["multiValueHeaders"] == {"Content-Type": ["application/json"]}
