"""moto's DynamoDB made as atomic and isolated as DynamoDB, for functions running side by side.

moto serves requests on threads (ThreadedMotoServer; in-process, on the callers' threads) with no lock
around its DynamoDB backend. A conditional write checks, then writes; and a TransactWriteItems copies
the tables it names and, when a condition fails, puts those copies back, undoing whatever another
request wrote in between. DynamoDB does neither: a conditional write is atomic, a transaction is
isolated from other writes. With a function's invocations running at once (`batchplane local
--concurrency`), copies of one event write under the same version guard, and a loser's rollback
erased the winner's decision or its stream record (a give-up whose alert was never published).

Every DynamoDB and DynamoDB Streams request takes one lock, as one request at a time is what DynamoDB's
guarantees look like from outside. It changes no answer, only what two requests at once can see.
"""

from __future__ import annotations

import threading
from typing import Any

_one_at_a_time = threading.RLock()


def serialize_dynamodb() -> None:
    """Each DynamoDB and DynamoDB Streams request runs alone. Idempotent."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action
        if getattr(original, "_batchplane", False):
            continue

        def call_action(self: Any, original: Any = original) -> Any:
            with _one_at_a_time:
                return original(self)

        call_action._batchplane = True  # type: ignore[attr-defined]
        handler.call_action = call_action  # type: ignore[method-assign]
