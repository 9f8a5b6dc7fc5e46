"""An EventBridge event a function gives up on: logged with its id and the reason, then raised again
for Lambda to retry and, after its last try, keep in the function's DLQ."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from batchplane.failed_records.reasons import reason_of
from batchplane.observability import logger

Handler = TypeVar("Handler", bound=Callable[..., Any])


def logs_failed_event(handler: Handler) -> Handler:
    """For a function EventBridge invokes (asynchronously): an event whose handling raises is logged
    once, at WARNING, with its id and the reason, then raised again, so Lambda retries it and then keeps
    it in the function's DLQ."""

    @functools.wraps(handler)
    def logged(event: dict[str, Any], context: Any) -> Any:
        try:
            return handler(event, context)
        except Exception as error:
            known = event if isinstance(event, dict) else {}
            logger.warning(
                "event failed; raised for Lambda to retry (after its last try, to the DLQ)",
                extra={
                    "event_source": known.get("source"),
                    "record_id": known.get("id"),
                    "detail_type": known.get("detail-type"),
                    "reason": reason_of(error),
                },
            )
            raise

    return cast(Handler, logged)
