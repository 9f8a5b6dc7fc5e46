"""What a function gives up on, said once, at WARNING, with the record's id and the reason.

A record of an SQS or stream batch that fails goes back to its queue or shard (partial batch
response): SQS delivers it again and, after its last receive, moves it to the DLQ; the stream
delivers the shard again from it. An EventBridge event whose handler raises is retried by Lambda and
then kept in the function's DLQ. Either way the log says which record (SQS messageId, stream eventID,
EventBridge event id) and why (the exception's type and message), never the payload: a message should
never reach a DLQ without a line that says why.

Three modules, so that a function pays at cold start only for what it uses: `reasons.py` (the reason
an exception gives), `events.py` (EventBridge events) and `batches.py` (SQS and stream batches, on
Powertools' batch processor, which costs about 70 ms to import).
"""
