"""Object-created notifications, in the two shapes S3 sends them, reduced to one DroppedObject.

S3 event notifications (to SQS, SNS or Lambda) URL-encode the key, form style: `red+flower.jpg`
is `red flower.jpg`. S3 -> EventBridge "Object Created" events carry the key as it is.
"""

import hashlib
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ConfigDict, Field

from batchplane.models.base import Model

# S3's rule for two sequencers of one key (User Guide, "Event message structure"): right-pad the
# shorter with zeros, then compare lexicographically; the greater is the later event. The left-most
# hex digits are a timestamp, so a shorter sequencer is not a smaller number. Padding every sequencer
# on the right to one width is that rule for any two of them; S3's are 16 to 20 digits.
SEQUENCER_WIDTH = 64


class _Lenient(Model):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class DroppedObject(_Lenient):
    bucket: str = Field(min_length=3)
    key: str = Field(min_length=1, description="the decoded key")
    size: int = Field(ge=0)
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = Field(default=None, pattern=rf"^[0-9A-Fa-f]{{1,{SEQUENCER_WIDTH}}}$")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        name = self.name
        return name.rsplit(".", 1)[0] if "." in name[1:] else name

    def idempotency_key(self) -> str:
        """The same object version (or, unversioned, content) delivered twice is one job."""
        identity = "\n".join(
            [self.bucket, self.key, self.version_id or self.etag or "", self.sequencer or ""]
        )
        return "s3:" + hashlib.sha256(identity.encode()).hexdigest()

    def ordering(self) -> str | None:
        """The sequencer in upper case (hex compares case-insensitively), right-padded with zeros to
        SEQUENCER_WIDTH, so that string order is S3's event order for a key."""
        return self.sequencer.upper().ljust(SEQUENCER_WIDTH, "0") if self.sequencer else None


class _NotificationObject(_Lenient):
    key: str
    size: int = 0
    e_tag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")
    sequencer: str | None = None


class _NotificationBucket(_Lenient):
    name: str


class _NotificationEntity(_Lenient):
    bucket: _NotificationBucket
    object: _NotificationObject


class S3NotificationRecord(_Lenient):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    s3: _NotificationEntity

    def dropped(self) -> DroppedObject:
        obj = self.s3.object
        return DroppedObject(
            bucket=self.s3.bucket.name,
            key=unquote_plus(obj.key),
            size=obj.size,
            etag=obj.e_tag,
            version_id=obj.version_id,
            sequencer=obj.sequencer,
        )


class _BridgeObject(_Lenient):
    key: str
    size: int = 0
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class ObjectCreatedDetail(_Lenient):
    bucket: _NotificationBucket
    object: _BridgeObject

    def dropped(self) -> DroppedObject:
        obj = self.object
        return DroppedObject(
            bucket=self.bucket.name,
            key=obj.key,  # EventBridge does not encode the key
            size=obj.size,
            etag=obj.etag,
            version_id=obj.version_id,
            sequencer=obj.sequencer,
        )


def is_test_event(message: dict[str, Any]) -> bool:
    """S3 sends an s3:TestEvent (no Records) when a notification is configured."""
    return message.get("Event") == "s3:TestEvent"


def objects_in(message: dict[str, Any]) -> list[DroppedObject]:
    """The created objects a message speaks of: an S3 notification (Records) or an EventBridge event.

    Raises pydantic's ValidationError for a record with a missing or malformed field.
    """
    if is_test_event(message):
        return []
    if "Records" in message:
        return [
            S3NotificationRecord.model_validate(record).dropped()
            for record in message["Records"]
            if str(record.get("eventName", "")).startswith("ObjectCreated:")
        ]
    if message.get("source") == "aws.s3" and message.get("detail-type") == "Object Created":
        return [ObjectCreatedDetail.model_validate(message.get("detail")).dropped()]
    raise ValueError("not an S3 object-created notification or EventBridge event")
