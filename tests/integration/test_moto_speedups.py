"""moto with the local stack's speed-ups (batchplane_tools.local.moto_speedups) keeps its behaviour."""

from __future__ import annotations

import json

import boto3
import jsonpath_ng.ext
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamShard, Table
from moto.dynamodb.responses import DynamoResult
from moto.dynamodbstreams.models import ShardIterator, dynamodbstreams_backends
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.sqs.models import Message, Queue, sqs_backends

from batchplane_tools.local.moto_speedups import (
    ITERATOR_LIFETIME_SECONDS,
    dump_item_results,
    dump_stream_records,
    expire_shard_iterators,
    number_stream_records_once,
    query_one_partition,
    read_queue_attributes_lazily,
    reuse_jsonpath_parsers,
    roll_transactions_back_from_a_journal,
    stop_instance_tracking,
)


@pytest.fixture(autouse=True)
def _undo_speedups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test patches moto; the tests after it (in this process) get moto as it was."""
    for owner, name in (
        (dynamodb_models, "copy"),
        (dynamodb_models.DynamoDBBackend, "transact_write_items"),
        (Queue, "attributes"),
        (jsonpath_ng.ext, "parse"),
        (StreamShard, "add"),
        (StreamShard, "get"),
        (ShardIterator, "__init__"),
        (Table, "query"),
        (Table, "all_items"),
        (DynamoDBStreamsHandler, "get_records"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))


def _table(dynamodb: object, name: str, *, range_key: bool) -> None:
    keys = [("pk", "HASH"), ("sk", "RANGE")] if range_key else [("pk", "HASH")]
    dynamodb.create_table(  # type: ignore[attr-defined]
        TableName=name,
        KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in keys],
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def _churn(session: boto3.session.Session, writes: int) -> None:
    dynamodb = session.client("dynamodb")
    _table(dynamodb, "t", range_key=False)
    url = session.client("sqs").create_queue(QueueName="q")["QueueUrl"]
    for n in range(writes):
        # A transaction makes moto copy the table for its rollback.
        dynamodb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": f"k{n}"}}}}]
        )
        session.client("sqs").send_message(QueueUrl=url, MessageBody=str(n))


def test_moto_tracks_every_copy_it_makes_unless_told_not_to() -> None:
    # Given moto as it is
    with mock_aws():
        session = boto3.session.Session(region_name="us-east-1")
        # When 20 transactions and messages go through it
        _churn(session, 20)
        # Then it keeps every table copy, item and message in its class-level lists
        assert len(Table.instances_tracked) > 20  # type: ignore[attr-defined]
        assert len(Item.instances_tracked) >= 20  # type: ignore[attr-defined]
        assert len(Message.instances_tracked) == 20  # type: ignore[attr-defined]

    # Given moto with instance tracking stopped
    with mock_aws():
        stop_instance_tracking()
        session = boto3.session.Session(region_name="us-east-1")
        # When the same traffic goes through it
        _churn(session, 20)
        # Then nothing is kept but what the backends hold, and the data is all there
        assert len(Table.instances_tracked) == 0  # type: ignore[attr-defined]
        assert len(Item.instances_tracked) == 0  # type: ignore[attr-defined]
        assert len(Message.instances_tracked) == 0  # type: ignore[attr-defined]
        assert session.client("dynamodb").scan(TableName="t", Select="COUNT")["Count"] == 20


def test_a_failed_transaction_still_rolls_back_with_partial_copies() -> None:
    # Given moto rolling transactions back from a journal, a table with items a, b and z, and an
    # empty hash-only table
    roll_transactions_back_from_a_journal()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        _table(dynamodb, "t", range_key=True)
        _table(dynamodb, "h", range_key=False)
        for pk, sk in (("a", "1"), ("a", "2"), ("b", "1"), ("z", "1")):
            dynamodb.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": "0"}})
        tables = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables
        untouched = tables["t"].items[DynamoType({"S": "z"})]
        beside = tables["t"].items[DynamoType({"S": "a"})][DynamoType({"S": "2"})]

        # When a transaction updates a, creates c and x (in both tables), then fails its check on b
        with pytest.raises(ClientError) as raised:
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET v = :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "3"}}}},
                    {"Put": {"TableName": "h", "Item": {"pk": {"S": "x"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )

        # Then it is cancelled and both tables are as they were
        assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
        items = {(i["pk"]["S"], i["sk"]["S"]): i["v"]["N"] for i in dynamodb.scan(TableName="t")["Items"]}
        assert items == {("a", "1"): "0", ("a", "2"): "0", ("b", "1"): "0", ("z", "1"): "0"}
        # (an item of a named partition that the transaction does not name was never copied)
        assert tables["t"].items[DynamoType({"S": "a"})][DynamoType({"S": "2"})] is beside
        assert dynamodb.scan(TableName="h")["Items"] == []
        assert set(tables["t"].items) == {DynamoType({"S": k}) for k in "abz"}  # no partition c left
        # And the partition the transaction never named was never copied
        assert tables["t"].items[DynamoType({"S": "z"})] is untouched


def _streamed_table(dynamodb: object) -> str:
    """A table with a stream of both images; its stream's ARN."""
    created = dynamodb.create_table(  # type: ignore[attr-defined]
        TableName="s",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return str(created["TableDescription"]["LatestStreamArn"])


def _streams() -> object:
    # (boto3 aims a call naming a stream ARN at the account's endpoint, which in-process moto lacks)
    return boto3.client(
        "dynamodbstreams", region_name="us-east-1", config=Config(account_id_endpoint_mode="disabled")
    )


def test_a_failed_transaction_rolls_a_streams_records_back_and_never_reuses_their_numbers() -> None:
    # Given moto rolling transactions back from a journal and numbering stream records once, and a
    # table with a stream and an item a
    roll_transactions_back_from_a_journal()
    number_stream_records_once()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        arn = _streamed_table(dynamodb)
        dynamodb.put_item(TableName="s", Item={"pk": {"S": "a"}})
        live = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["s"].stream_shard

        # When a transaction puts b, then fails its check on a; and then c is put
        with pytest.raises(ClientError):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "s", "Item": {"pk": {"S": "b"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "s",
                            "Key": {"pk": {"S": "a"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        dynamodb.put_item(TableName="s", Item={"pk": {"S": "c"}})

        # Then the stream holds a's and c's writes only, b's rolled back with the table, and c has a
        # number b never gave away again
        streams = _streams()
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]  # type: ignore[attr-defined]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")  # type: ignore[attr-defined]
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]  # type: ignore[attr-defined]
        assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["a", "c"]
        first, last = (int(r["dynamodb"]["SequenceNumber"]) for r in records)
        assert last == first + 2
        assert dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["s"].stream_shard is live
        # and a read from a number finds its record by number
        after = streams.get_shard_iterator(  # type: ignore[attr-defined]
            StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=str(first)
        )
        [later] = streams.get_records(ShardIterator=after["ShardIterator"])["Records"]  # type: ignore[attr-defined]
        assert later["dynamodb"]["Keys"]["pk"]["S"] == "c"


def test_shard_iterators_are_forgotten_after_aws_s_fifteen_minutes() -> None:
    # Given moto expiring shard iterators, and a streamed table's iterators made long ago and now
    expire_shard_iterators()
    with mock_aws():
        arn = _streamed_table(boto3.client("dynamodb", region_name="us-east-1"))
        streams = _streams()
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]  # type: ignore[attr-defined]

        def iterator() -> str:
            made = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")  # type: ignore[attr-defined]
            return str(made["ShardIterator"])

        backend = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        old, recent = iterator(), iterator()
        backend.shard_iterators[old]._batchplane_made -= ITERATOR_LIFETIME_SECONDS + 1
        backend._batchplane_pruned = 0.0

        # When another is made
        newest = iterator()

        # Then the one older than fifteen minutes is gone, and the others still read
        assert old not in backend.shard_iterators
        assert {recent, newest} <= set(backend.shard_iterators)
        assert streams.get_records(ShardIterator=recent)["Records"] == []  # type: ignore[attr-defined]


def test_a_malformed_key_in_a_transaction_is_reported_by_moto_as_before() -> None:
    # Given moto rolling transactions back from a journal, and a table keyed by a number
    roll_transactions_back_from_a_journal()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="n",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "N"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # When a transaction names a key that is no number
        with pytest.raises(ClientError) as raised:
            dynamodb.transact_write_items(
                TransactItems=[{"Put": {"TableName": "n", "Item": {"pk": {"N": "abc"}}}}]
            )
        # Then moto answers with an AWS error, not a crash of the patch
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_the_retention_check_still_drops_expired_messages() -> None:
    # Given moto reading queue attributes lazily, a queue with a fresh message and one with a
    # message sent five days ago (retention is four days by default)
    read_queue_attributes_lazily()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        fresh, stale = (sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("fresh", "stale"))
        sqs.send_message(QueueUrl=fresh, MessageBody="new")
        sqs.send_message(QueueUrl=stale, MessageBody="old")
        queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["stale"]
        queue._messages[0].sent_timestamp -= 5 * 86_400 * 1000

        # When both queues are read
        received = {
            url: [m["Body"] for m in sqs.receive_message(QueueUrl=url).get("Messages", [])]
            for url in (fresh, stale)
        }

        # Then only the fresh message comes back
        assert received == {fresh: ["new"], stale: []}


def test_rules_still_deliver_each_event_as_it_was_put() -> None:
    # Given moto reusing parsed JSONPath expressions, and a rule that sends Batch events to a queue
    reuse_jsonpath_parsers()
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.batch"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "t", "Arn": arn}])

        # When two different events are put
        for status in ("RUNNABLE", "RUNNING"):
            events.put_events(
                Entries=[
                    {
                        "Source": "aws.batch",
                        "DetailType": "Batch Job State Change",
                        "Detail": json.dumps({"status": status}),
                    }
                ]
            )

        # Then each arrives with its own detail, through parsers built once
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(json.loads(m["Body"])["detail"]["status"] for m in received) == ["RUNNABLE", "RUNNING"]
        assert jsonpath_ng.ext.parse.cache_info().hits > 0


def test_queue_attributes_read_lazily_are_moto_s_own_and_sends_count_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given moto's own attributes of a standard queue with a redrive policy and a queue policy, of a
    # FIFO queue with content-based deduplication and of a KMS-encrypted queue, each holding a message
    moto_attributes = Queue.attributes.fget
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        urls = [
            sqs.create_queue(
                QueueName="standard",
                Attributes={
                    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
                    "Policy": json.dumps({"Version": "2012-10-17", "Statement": []}),
                },
            )["QueueUrl"],
            sqs.create_queue(
                QueueName="ordered.fifo",
                Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
            )["QueueUrl"],
            sqs.create_queue(QueueName="sealed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})["QueueUrl"],
        ]
        for url in urls:
            group = {"MessageGroupId": "g"} if url.endswith(".fifo") else {}
            sqs.send_message(QueueUrl=url, MessageBody="m", **group)
        queues = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues
        expected = {name: moto_attributes(queue) for name, queue in queues.items()}
        answered = [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in urls
        ]

        # When the attributes are read lazily
        read_queue_attributes_lazily()

        # Then every queue has the same names and values as moto gives, and GetQueueAttributes agrees
        assert {name: dict(queue.attributes) for name, queue in queues.items()} == expected
        assert [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] for url in urls
        ] == (answered)

        # When messages are sent to and received from a queue, with its message count watched
        counted: list[str] = []
        count = Queue.approximate_number_of_messages.fget
        monkeypatch.setattr(
            Queue,
            "approximate_number_of_messages",
            property(lambda queue: counted.append(queue.name) or count(queue)),  # type: ignore[func-returns-value]
        )
        for body in ("a", "b", "b", "c"):
            sqs.send_message(QueueUrl=urls[1], MessageBody=body, MessageGroupId="g")
        received = sqs.receive_message(QueueUrl=urls[1], MaxNumberOfMessages=10)["Messages"]

        # Then nothing was counted, and the FIFO queue still deduplicated by content
        assert counted == []
        assert [m["Body"] for m in received] == ["m", "a", "b", "c"]


def _reads(dynamodb: object, streams: object, stream_arn: str) -> tuple[list[object], list[object]]:
    """What Queries of the table (each direction, a page, an index) and GetRecords answer."""
    queries = [
        dynamodb.query(  # type: ignore[attr-defined]
            TableName="q",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            **more,
        )
        for pk in ("a", "b", "none")
        for more in ({}, {"ScanIndexForward": False}, {"Limit": 2}, {"ConsistentRead": True})
    ]
    queries.append(
        dynamodb.query(  # type: ignore[attr-defined]
            TableName="q",
            IndexName="by_g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
        )
    )
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]  # type: ignore[attr-defined]
    iterator = streams.get_shard_iterator(  # type: ignore[attr-defined]
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=5)["Records"]  # type: ignore[attr-defined]
    for query in queries:
        query.pop("ResponseMetadata", None)  # type: ignore[attr-defined]
    return queries, [{k: v for k, v in r.items() if k != "eventID"} for r in records]  # type: ignore[attr-defined]


def test_queries_of_one_partition_and_dumped_stream_records_answer_as_moto_does() -> None:
    # Given a streamed table with items in several partitions (and an index)
    answers = []
    for speedup in (False, True):
        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            created = dynamodb.create_table(
                TableName="q",
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "by_g",
                        "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    }
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            for pk, sk in (("b", "2"), ("a", "3"), ("a", "1"), ("c", "1"), ("a", "2"), ("b", "1")):
                item = {"pk": {"S": pk}, "sk": {"S": sk}, "g": {"S": "x"}, "n": {"N": "1"}}
                dynamodb.put_item(TableName="q", Item=item)
            dynamodb.update_item(
                TableName="q",
                Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            if speedup:
                query_one_partition()
                dump_stream_records()
            # When it is read, with and without the speed-ups
            answers.append(_reads(dynamodb, _streams(), created["TableDescription"]["LatestStreamArn"]))

    # Then the answers are the same
    (queries, records), (fast_queries, fast_records) = answers
    assert fast_queries == queries
    # (but for when each run wrote: the time, and moto's size, which counts the time's digits)
    for record in fast_records + records:
        assert record["dynamodb"].pop("ApproximateCreationDateTime").year > 2000
        assert record["dynamodb"].pop("SizeBytes") > 0
    assert fast_records == records


def _item_operations(dynamodb: object) -> list[object]:
    """Every item operation's answer on a table with every kind of attribute value, metadata dropped."""
    _table(dynamodb, "i", range_key=True)
    item = {
        "pk": {"S": "a"},
        "sk": {"S": "1"},
        "n": {"N": "1.50"},
        "b": {"B": b"\x00\xff"},
        "t": {"BOOL": False},
        "z": {"NULL": True},
        "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"deep": {"BS": [b"\x01"]}}}]},
        "sets": {"M": {"ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2"]}}},
    }
    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    calls = [
        lambda: dynamodb.put_item(TableName="i", Item=item, ReturnValues="ALL_OLD"),  # type: ignore[attr-defined]
        lambda: dynamodb.put_item(TableName="i", Item=item, ReturnValues="ALL_OLD"),  # type: ignore[attr-defined]
        lambda: dynamodb.get_item(TableName="i", Key=key, ReturnConsumedCapacity="TOTAL"),  # type: ignore[attr-defined]
        lambda: dynamodb.get_item(TableName="i", Key={"pk": {"S": "none"}, "sk": {"S": "1"}}),  # type: ignore[attr-defined]
        lambda: dynamodb.update_item(  # type: ignore[attr-defined]
            TableName="i",
            Key=key,
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        lambda: dynamodb.query(  # type: ignore[attr-defined]
            TableName="i",
            KeyConditionExpression="pk = :a",
            ExpressionAttributeValues={":a": {"S": "a"}},
            Limit=1,
        ),
        lambda: dynamodb.scan(TableName="i"),  # type: ignore[attr-defined]
        lambda: dynamodb.batch_get_item(RequestItems={"i": {"Keys": [key]}}),  # type: ignore[attr-defined]
        lambda: dynamodb.batch_write_item(  # type: ignore[attr-defined]
            RequestItems={"i": [{"PutRequest": {"Item": {**item, "sk": {"S": "2"}}}}]}
        ),
        lambda: dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": "i", "Key": key}}]),  # type: ignore[attr-defined]
        lambda: dynamodb.transact_write_items(  # type: ignore[attr-defined]
            TransactItems=[{"Delete": {"TableName": "i", "Key": {"pk": {"S": "a"}, "sk": {"S": "2"}}}}]
        ),
        lambda: dynamodb.delete_item(TableName="i", Key=key, ReturnValues="ALL_OLD"),  # type: ignore[attr-defined]
    ]
    answers = []
    for call in calls:
        answer = call()
        answer.pop("ResponseMetadata")
        answers.append(answer)
    try:  # and a refused condition, with the item it found
        dynamodb.put_item(  # type: ignore[attr-defined]
            TableName="i",
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        dynamodb.put_item(  # type: ignore[attr-defined]
            TableName="i",
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as refused:
        answers.append({k: v for k, v in refused.response.items() if k != "ResponseMetadata"})
    return answers


def test_item_operations_dumped_as_json_answer_as_moto_s_serializer_does(monkeypatch) -> None:
    # Given moto's own serializer, and then the dumped item results
    serialized = getattr(DynamoResult.execute_result, "serialized", DynamoResult.execute_result)
    answers = []
    for speedup in (False, True):
        monkeypatch.setattr(DynamoResult, "execute_result", serialized)
        if speedup:
            dump_item_results()
        with mock_aws():
            # When every item operation is made on items with every kind of value
            answers.append(_item_operations(boto3.client("dynamodb", region_name="us-east-1")))

    # Then botocore reads the same answers from both
    plain, dumped = answers
    assert len(plain) == 13
    assert dumped == plain
