"""Object-created events in both of S3's shapes become the same DroppedObject."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from batchplane.models.s3_event import SEQUENCER_WIDTH, DroppedObject, objects_in
from tests.support import load_event


def test_notification_keys_are_url_decoded_form_style() -> None:
    [obj] = objects_in(load_event("s3/object_created.json"))

    assert obj.key == "incoming/analytics/word-count/red flowerÉ notes.txt"
    assert obj.uri == "s3://batchplane-dev-ingest/incoming/analytics/word-count/red flowerÉ notes.txt"
    assert (obj.size, obj.etag, obj.version_id) == (
        48213,
        "9b2cf535f27731c974343645a3985328",
        "Kp0vX7mQ2cR8sT4uW1yZ6aB3dE9fG5hJ",
    )


def test_a_literal_plus_survives_decoding() -> None:
    objs = objects_in(load_event("s3/object_created_batch.json"))

    assert [o.key for o in objs] == [
        "incoming/analytics/word-count/c++ notes (draft).txt",
        "incoming/analytics/checksum/manifest 2025-11-28=final.json",
        "incoming/analytics/word-count/Überblick/ärger.txt",
    ]


def test_eventbridge_object_created_keys_are_taken_as_they_are() -> None:
    [obj] = objects_in(load_event("s3/eventbridge_object_created.json"))

    assert obj.bucket == "batchplane-dev-ingest"
    assert obj.version_id is not None
    assert "%" not in obj.key


def test_s3_test_event_holds_no_object() -> None:
    assert objects_in(load_event("s3/test_event.json")) == []


def test_record_with_a_missing_field_is_an_error_to_keep_not_to_drop() -> None:
    event = load_event("s3/object_created.json")
    del event["Records"][0]["s3"]["object"]["key"]

    with pytest.raises(ValidationError):
        objects_in(event)


def test_unrelated_message_is_an_error() -> None:
    with pytest.raises(ValueError, match="not an S3"):
        objects_in({"hello": "world"})


def obj(**fields: object) -> DroppedObject:
    base: dict[str, object] = {
        "bucket": "b-1",
        "key": "k",
        "size": 1,
        "etag": "e",
        "version_id": "v1",
        "sequencer": "0A",
    }
    base.update(fields)
    return DroppedObject.model_validate(base)


def test_the_same_version_is_one_idempotency_key_and_a_new_version_another() -> None:
    assert obj().idempotency_key() == obj().idempotency_key()
    assert obj().idempotency_key() != obj(version_id="v2", sequencer="0B").idempotency_key()


# AWS's documented sample sequencers: the S3 notification example's, and S3 -> EventBridge's (lower case).
NOTIFICATION_SAMPLE = "0055AED6DCD90281E5"
EVENTBRIDGE_SAMPLE = "617f08299329d189"


def aws_rule_is_later(a: str, b: str) -> bool:
    """S3's rule in its own words: right-pad the shorter with zeros, then compare lexicographically."""
    width = max(len(a), len(b))
    return a.upper().ljust(width, "0") > b.upper().ljust(width, "0")


def order(sequencer: str) -> str:
    ordering = obj(sequencer=sequencer).ordering()
    assert ordering is not None
    return ordering


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        # a later event with a shorter sequencer: its left-most digits (the time) are greater
        (NOTIFICATION_SAMPLE, "0055AED6DCD90282"),
        # a later event with a longer one
        ("0055AED6DCD90281", NOTIFICATION_SAMPLE),
        (NOTIFICATION_SAMPLE, EVENTBRIDGE_SAMPLE),
        # "FF" is later than "0100": right-padded, "FF00" > "0100"
        ("0100", "FF"),
    ],
)
def test_sequencers_are_ordered_by_the_right_pad_rule(older: str, newer: str) -> None:
    # Given two sequencers of one key, of different lengths
    # When each is turned into its ordering
    # Then the later event's is greater, as S3's rule says, whichever is longer
    assert aws_rule_is_later(newer, older)
    assert order(older) < order(newer)


def test_sequencers_compare_as_hex_whatever_their_case() -> None:
    assert order(EVENTBRIDGE_SAMPLE) == order(EVENTBRIDGE_SAMPLE.upper())
    assert order("0055aed6dcd90282") > order(NOTIFICATION_SAMPLE)


def test_trailing_zeros_are_the_padding_itself() -> None:
    assert order("0055AED6DCD90282") == order("0055AED6DCD9028200")


@given(
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=SEQUENCER_WIDTH),
    st.text("0123456789abcdefABCDEF", min_size=1, max_size=SEQUENCER_WIDTH),
)
def test_ordering_agrees_with_the_right_pad_rule_for_any_two_sequencers(a: str, b: str) -> None:
    assert (order(a) > order(b)) == aws_rule_is_later(a, b)
    assert (order(a) == order(b)) == (not aws_rule_is_later(a, b) and not aws_rule_is_later(b, a))


@pytest.mark.parametrize("sequencer", ["", "0055AED6DCD9028G", "0x55", "1" * (SEQUENCER_WIDTH + 1)])
def test_a_sequencer_that_is_not_hex_is_a_malformed_record(sequencer: str) -> None:
    with pytest.raises(ValidationError, match="sequencer"):
        obj(sequencer=sequencer)


def test_name_and_stem_of_a_key() -> None:
    assert (obj(key="a/b/report.final.csv").name, obj(key="a/b/report.final.csv").stem) == (
        "report.final.csv",
        "report.final",
    )
    assert obj(key="a/.hidden").stem == ".hidden"
