"""Object-created events in both of S3's shapes become the same DroppedObject."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from batchplane.models.s3_event import DroppedObject, objects_in
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


def test_sequencers_compare_after_left_padding() -> None:
    # "FF" (255) is older than "0100" (256), though "FF" > "0100" as plain strings
    older, newer = obj(sequencer="FF").ordering(), obj(sequencer="0100").ordering()

    assert older is not None and newer is not None
    assert older < newer


def test_name_and_stem_of_a_key() -> None:
    assert (obj(key="a/b/report.final.csv").name, obj(key="a/b/report.final.csv").stem) == (
        "report.final.csv",
        "report.final",
    )
    assert obj(key="a/.hidden").stem == ".hidden"
