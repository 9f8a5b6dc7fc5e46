"""The coalescer: first attempts of coalescible jobs go to Batch as array jobs, exactly once.

moto's Batch takes SubmitJob's arrayProperties and makes the children ("<parent>:<k>"); the tests
count SubmitJob calls through the handlers' own client and read the manifest from moto's S3.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from moto.batch.responses import BatchResponse
from moto.core.exceptions import JsonRESTError

from batchplane.models.request import JobRequest
from batchplane.service import jobs
from batchplane.service.ports import Claim
from batchplane.wiring import ports
from tests.support import LambdaContext, api_event, load_function, sqs_event, submit_job, tenant_input

JOB_TYPE = "checksum-manifest"
VISIBILITY_TIMEOUT = 1800  # the array queue's (template.yaml): a crashed batch comes back after it


class Crash(BaseException):
    """The process dies: no handler and no batch processor catches it (as tests/faults' Crash)."""


def make_jobs(count: int, *, max_size: int = 250) -> list[str]:
    """`count` coalescible jobs of one tenant and route, the type's arrays at most `max_size`."""
    wired = ports()
    kind = wired.policy.job_types[JOB_TYPE]
    assert kind.array is not None
    resized = kind.model_copy(update={"array": kind.array.model_copy(update={"max_size": max_size})})
    wired.policy = wired.policy.model_copy(
        update={"job_types": {**wired.policy.job_types, JOB_TYPE: resized}}
    )
    made = []
    for n in range(count):
        request = JobRequest(
            tenant="analytics",
            job_type=JOB_TYPE,
            parameters={"input": tenant_input(f"checksum/file-{n:04d}.bin")},
            array=True,
        )
        made.append(jobs.submit(wired, request).job.job_id)
    return made


def array_messages(aws) -> list[tuple[str, str, int]]:
    """Everything the array queue holds now, taken off it, as (message id, body, receive count)."""
    sqs, url = aws.client("sqs"), aws.env["ARRAY_QUEUE_URL"]
    taken: list[tuple[str, str, int]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=60
    ).get("Messages", []):
        for m in batch:
            taken.append((m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"])))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return taken


def due_jobs(aws, count: int, *, max_size: int = 250) -> tuple[list[str], list[tuple[str, str, int]], Any]:
    """`count` coalescible jobs (make_jobs), their messages taken off the array queue, their wait over;
    and Batch's calls recorded from now on."""
    job_ids = make_jobs(count, max_size=max_size)
    messages = array_messages(aws)
    later(31)
    return job_ids, messages, aws.record_calls("batch")


def redelivered(messages: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [(message_id, body, count + 1) for message_id, body, count in messages]


def later(seconds: int) -> None:
    wired = ports()
    now = wired.clock()
    wired.clock = lambda: now + timedelta(seconds=seconds)


def coalesce(messages: list[tuple[str, str, int]]) -> dict[str, Any]:
    return load_function("coalescer").handler(sqs_event(messages), LambdaContext())  # type: ignore[no-any-return]


def submits(calls: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [params for service, operation, params in calls if operation == "SubmitJob"]


def claims(job_ids: list[str]) -> dict[str, tuple[str | None, int | None]]:
    """Each job's first attempt: (array name, index)."""
    found = {}
    for job_id in job_ids:
        job = ports().store.get(job_id)
        assert job is not None
        attempt = job.attempt(1)
        found[job_id] = (attempt.array_name, attempt.array_index) if attempt else (None, None)
    return found


def manifest(aws, uri: str) -> list[dict[str, Any]]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def environment_of(submit: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in submit["containerOverrides"]["environment"]}


def test_a_burst_of_250_drops_is_one_array_job_whose_manifest_names_each_job_once(aws) -> None:
    # Given 250 coalescible jobs queued, their wait over
    job_ids, messages, calls = due_jobs(aws, 250)

    # When the coalescer gets them in one batch
    result = coalesce(messages)

    # Then one SubmitJob made an array of 250
    assert result == {"batchItemFailures": []}
    [submit] = submits(calls)
    assert submit["arrayProperties"] == {"size": 250}
    environment = environment_of(submit)
    # and its manifest names each job once, in index order, with the attempt's own output prefix
    lines = manifest(aws, environment["BATCHPLANE_MANIFEST"])
    assert [line["index"] for line in lines] == list(range(250))
    assert sorted(line["job_id"] for line in lines) == sorted(job_ids)
    assert all(line["attempt"] == 1 and line["tenant"] == "analytics" for line in lines)
    # and each job's attempt is claimed by the array at its manifest index
    name = environment["BATCHPLANE_ARRAY"]
    assert submit["jobName"] == name
    assert claims(job_ids) == {line["job_id"]: (name, line["index"]) for line in lines}
    assert ports().arrays.parent_of(name) is not None


def test_a_lone_drop_waits_its_max_wait_and_then_goes_alone(aws) -> None:
    # Given one coalescible job, just made
    [job_id] = make_jobs(1)
    calls = aws.record_calls("sqs", "batch")

    # When the coalescer sees it before its wait is over
    assert coalesce(array_messages(aws)) == {"batchItemFailures": []}

    # Then it is sent back delayed by the rest of its wait, and nothing is submitted
    [resent] = [p for _, operation, p in calls if operation == "SendMessageBatch"]
    assert resent["QueueUrl"] == aws.env["ARRAY_QUEUE_URL"]
    [entry] = resent["Entries"]
    assert 29 <= entry["DelaySeconds"] <= 30
    assert submits(calls) == []

    # When it comes back after its wait
    later(31)
    coalesce([("again", entry["MessageBody"], 1)])

    # Then it is submitted as a single job, under its own name
    [submit] = submits(calls)
    assert "arrayProperties" not in submit
    assert submit["jobName"] == f"bp-{job_id}-1"
    assert claims([job_id]) == {job_id: (None, None)}


def test_a_young_group_is_deferred_ten_messages_a_request(aws) -> None:
    # Given 25 coalescible jobs, just made (their group short of its 250 and its wait not over)
    job_ids = make_jobs(25)
    calls = aws.record_calls("sqs")

    # When the coalescer sees them
    assert coalesce(array_messages(aws)) == {"batchItemFailures": []}

    # Then all 25 go back to the array queue, delayed alike, in three SendMessageBatch requests
    sent = [p for _, operation, p in calls if operation.startswith("SendMessage")]
    assert [len(p["Entries"]) for p in sent] == [10, 10, 5]
    assert {e["DelaySeconds"] for p in sent for e in p["Entries"]} <= {29, 30}
    deferred = [json.loads(e["MessageBody"])["job_id"] for p in sent for e in p["Entries"]]
    assert sorted(deferred) == sorted(job_ids)
    assert {p["QueueUrl"] for p in sent} == {aws.env["ARRAY_QUEUE_URL"]}


def test_the_same_batch_delivered_twice_submits_one_array(aws) -> None:
    # Given a batch of coalescible jobs the coalescer made an array of
    job_ids, messages, calls = due_jobs(aws, 30)
    coalesce(messages)
    first = claims(job_ids)

    # When the same batch comes again
    assert coalesce(messages) == {"batchItemFailures": []}

    # Then the array was adopted, not submitted again, and no claim moved
    assert len(submits(calls)) == 1
    assert claims(job_ids) == first


def test_messages_split_across_two_overlapping_batches_put_each_job_in_one_array(aws) -> None:
    # Given 250 coalescible jobs whose messages arrive in two batches that share 50 of them
    job_ids, messages, calls = due_jobs(aws, 250)

    # When the coalescer gets 0..149 and then 100..249
    coalesce(messages[:150])
    coalesce(messages[100:])

    # Then two arrays of 150 indexes (the second's 50 shared jobs are holes: the first holds them),
    # and every job claimed by exactly one of them
    sizes = sorted(s["arrayProperties"]["size"] for s in submits(calls))
    assert sizes == [150, 150]
    claimed = claims(job_ids)
    assert all(name is not None for name, _ in claimed.values())
    by_array: dict[str, set[int]] = {}
    for name, index in claimed.values():
        assert name is not None and index is not None
        by_array.setdefault(name, set()).add(index)
    assert sorted(len(indexes) for indexes in by_array.values()) == [100, 150]
    # and the second array's children at its 50 holes terminated as soon as it was submitted, before
    # any of them could run a job the first array runs
    [second] = [s for s in submits(calls) if len(by_array[s["jobName"]]) == 100]
    parent = ports().arrays.parent_of(second["jobName"])
    holes = {f"{parent}:{i}" for i in range(150) if i not in by_array[second["jobName"]]}
    assert len(holes) == 50
    assert {p["jobId"] for _, op, p in calls if op == "TerminateJob"} == holes


def _crash_in(monkeypatch: pytest.MonkeyPatch, port: Any, method: str, *, after: bool) -> None:
    """The port's method kills the process, before it runs or after it succeeded, once."""
    real = getattr(port, method)
    fired = []

    def dying(*args: Any, **kwargs: Any) -> Any:
        if fired:
            return real(*args, **kwargs)
        fired.append(True)
        if after:
            real(*args, **kwargs)
        raise Crash(method)

    monkeypatch.setattr(port, method, dying)


@pytest.mark.parametrize(
    ("port", "method", "after", "arrays"),
    [
        ("manifests", "write", True, 0),  # after the manifest, before parts, meta and claims
        ("arrays", "claim", True, 1),  # after the first claim
        ("batch", "submit", False, 1),  # after every claim, before SubmitJob
        ("batch", "submit", True, 1),  # after SubmitJob, before the parent's record
    ],
)
def test_a_crash_between_steps_is_resumed_by_the_redelivery_exactly_once(
    aws, monkeypatch, port, method, after, arrays
) -> None:
    # Given a batch of coalescible jobs, their wait over, and the coalescer dying at one step
    job_ids, messages, calls = due_jobs(aws, 12)
    _crash_in(monkeypatch, getattr(ports(), port), method, after=after)
    with pytest.raises(Crash):
        coalesce(messages)

    # When SQS delivers the batch again, once its visibility timeout is over
    later(VISIBILITY_TIMEOUT)
    result = coalesce(redelivered(messages))

    # Then each job was submitted once: in one array when its claims were made, else alone
    assert result == {"batchItemFailures": []}
    made = submits(calls)
    array_submits = [s for s in made if "arrayProperties" in s]
    assert len(array_submits) == arrays
    assert len(made) == (1 if arrays else 12)  # no job went alone as well
    assert [p for _, op, p in calls if op == "TerminateJob"] == []
    claimed = claims(job_ids)
    if arrays:
        [name] = {s["jobName"] for s in array_submits}
        assert sorted(index for _, index in claimed.values()) == list(range(12))  # type: ignore[type-var]
        assert {array for array, _ in claimed.values()} == {name}
        assert ports().arrays.parent_of(name) is not None
    else:
        assert sorted(s["jobName"] for s in made) == sorted(f"bp-{j}-1" for j in job_ids)
    for job_id in job_ids:
        job = ports().store.get(job_id)
        assert job is not None and job.status.value == "SUBMITTED"


def test_a_rest_submission_opts_in_and_waits_in_the_array_queue(aws, api) -> None:
    # When a caller submits a job of a type with an `array` policy, opting in
    job = submit_job(api, JOB_TYPE, tenant_input("checksum/rest.bin"), array=True)

    # Then its first attempt waits in the array queue, not the dispatch queue, with when it was made
    [(_, body, _)] = array_messages(aws)
    message = json.loads(body)
    assert message["job_id"] == job["job_id"]
    assert message["coalesce_since"] is not None
    assert aws.dispatch_messages() == []


def test_opting_in_for_a_type_without_an_array_policy_is_422_naming_array_and_writes_nothing(
    aws, api
) -> None:
    # Given a job type without an `array` section
    before = aws.table_items()

    # When a caller opts in for it
    status, body, _ = api(
        api_event(
            "POST",
            "/jobs",
            body={"job_type": "word-count", "parameters": {"input": tenant_input("a.txt")}, "array": True},
            headers={"Content-Type": "application/json"},
        )
    )

    # Then 422 names `array` and why, and nothing was written or queued
    assert status == 422
    [detail] = body["error"]["details"]
    assert detail["field"] == "array"
    assert "word-count" in detail["reason"]
    assert aws.table_items() == before
    assert array_messages(aws) == [] and aws.dispatch_messages() == []


def test_an_array_batch_refuses_fails_each_of_its_jobs_once(aws, monkeypatch) -> None:
    # Given coalescible jobs whose wait is over, and Batch refusing SubmitJob (its definition is gone)
    job_ids = make_jobs(3)
    messages = array_messages(aws)
    later(31)

    def refuse(self: BatchResponse) -> Any:
        error = JsonRESTError("ClientException", "job definition not found")
        error.code = 400
        raise error

    monkeypatch.setattr(BatchResponse, "submitjob", refuse)

    # When the coalescer submits their array
    assert coalesce(messages) == {"batchItemFailures": []}

    # Then each job failed for good with Batch's reason, its claimed attempt ended
    for job_id in job_ids:
        job = ports().store.get(job_id)
        assert job is not None and job.status.value == "FAILED"
        assert "job definition not found" in job.history[-1].reason
        assert job.attempts[-1].status.value == "FAILED"

    # and when the definition is back and the batch is delivered again, the array stays closed:
    # nothing is submitted for jobs already failed
    monkeypatch.undo()
    calls = aws.record_calls("batch")
    later(VISIBILITY_TIMEOUT)
    assert coalesce(redelivered(messages)) == {"batchItemFailures": []}
    assert submits(calls) == []
    assert {ports().store.get(job_id).status.value for job_id in job_ids} == {"FAILED"}  # type: ignore[union-attr]


def test_a_crash_after_closing_a_refused_array_is_finished_by_the_redelivery(aws, monkeypatch) -> None:
    # Given an array Batch refused, whose coalescer died right after closing it, before failing a job
    job_ids, messages, calls = due_jobs(aws, 3)

    def refuse(self: BatchResponse) -> Any:
        error = JsonRESTError("ClientException", "job definition not found")
        error.code = 400
        raise error

    monkeypatch.setattr(BatchResponse, "submitjob", refuse)
    _crash_in(monkeypatch, ports().arrays, "close", after=True)
    with pytest.raises(Crash):
        coalesce(messages)
    monkeypatch.undo()

    # When the batch comes back, its definition meanwhile fixed
    later(VISIBILITY_TIMEOUT)
    result = coalesce(redelivered(messages))

    # Then the redelivery fails each job with Batch's reason and submits nothing
    assert result == {"batchItemFailures": []}
    assert len(submits(calls)) == 1  # the refused call; none after it
    for job_id in job_ids:
        job = ports().store.get(job_id)
        assert job is not None and job.status.value == "FAILED"
        assert "job definition not found" in job.history[-1].reason


def test_an_array_whose_job_type_left_the_policy_fails_its_jobs_instead_of_retrying(aws, monkeypatch) -> None:
    # Given an array whose coalescer died after its claims, before SubmitJob
    job_ids, messages, calls = due_jobs(aws, 3)
    _crash_in(monkeypatch, ports().batch, "submit", after=False)
    with pytest.raises(Crash):
        coalesce(messages)
    # and its job type taken out of the policy meanwhile
    wired = ports()
    wired.policy = wired.policy.model_copy(
        update={"job_types": {k: v for k, v in wired.policy.job_types.items() if k != JOB_TYPE}}
    )

    # When the batch comes back
    later(VISIBILITY_TIMEOUT)
    result = coalesce(redelivered(messages))

    # Then its jobs fail for good, saying why, rather than going round the queue and its DLQ
    assert result == {"batchItemFailures": []}
    assert submits(calls) == []
    for job_id in job_ids:
        job = ports().store.get(job_id)
        assert job is not None and job.status.value == "FAILED"
        assert f"job type {JOB_TYPE} is no longer in the policy" in job.history[-1].reason


def test_two_stalled_arrays_that_each_hold_a_job_of_the_other_are_both_submitted_once(
    aws, monkeypatch
) -> None:
    # Given jobs a, b, c, d; array X of a, b, c whose invocation claimed a and b (c's claim not made)
    # and died before SubmitJob; and array Y of b, c, d (b and c delivered twice) whose invocation
    # claimed c and d, found b in X, and died before SubmitJob
    job_ids, messages, calls = due_jobs(aws, 4)
    by_job = {json.loads(body)["job_id"]: (message_id, body, count) for message_id, body, count in messages}
    a, b, c, d = job_ids
    book, batch = ports().arrays, ports().batch
    claiming = book.claim

    def c_not_claimed(job_id: str, *args: Any) -> Any:
        return Claim(ours=False) if job_id == c else claiming(job_id, *args)

    monkeypatch.setattr(book, "claim", c_not_claimed)
    _crash_in(monkeypatch, batch, "submit", after=False)
    with pytest.raises(Crash):
        coalesce([by_job[a], by_job[b], by_job[c]])
    monkeypatch.undo()
    _crash_in(monkeypatch, batch, "submit", after=False)
    twice = [(f"{message_id}-twice", body, count) for message_id, body, count in (by_job[b], by_job[c])]
    with pytest.raises(Crash):
        coalesce([*twice, by_job[d]])
    monkeypatch.undo()

    # When a's message comes back after the visibility timeout (both arrays long stalled)
    later(VISIBILITY_TIMEOUT)
    result = coalesce(redelivered([by_job[a]]))

    # Then X resumes Y one level deep, not back and forth without end: each array is submitted once,
    # each job is in the one array that claimed it, and each array's child at its hole is terminated
    assert result == {"batchItemFailures": []}
    made = submits(calls)
    assert sorted(s["arrayProperties"]["size"] for s in made) == [3, 3]
    claimed = claims(job_ids)
    assert claimed[a][0] == claimed[b][0] != claimed[c][0] == claimed[d][0]
    holes = set()
    for submit in made:
        parent = ports().arrays.parent_of(submit["jobName"])
        for line in manifest(aws, environment_of(submit)["BATCHPLANE_MANIFEST"]):
            if claimed[line["job_id"]][0] != submit["jobName"]:
                holes.add(f"{parent}:{line['index']}")
    assert len(holes) == 2
    assert {p["jobId"] for _, op, p in calls if op == "TerminateJob"} == holes


def test_a_twin_submission_of_one_array_is_terminated_and_the_first_parent_kept(aws, monkeypatch) -> None:
    # Given a batch of coalescible jobs whose array a twin delivery has submitted and recorded first
    job_ids, messages, calls = due_jobs(aws, 5)
    book = ports().arrays
    recording = book.record_parent

    def twin_first(array_name: str, parent_job_id: str) -> bool:
        recording(array_name, "twin-parent")
        return recording(array_name, parent_job_id)

    monkeypatch.setattr(book, "record_parent", twin_first)

    # When this delivery submits the same array
    assert coalesce(messages) == {"batchItemFailures": []}

    # Then its own parent is terminated, and the twin's stays the array's
    [made] = [s for s in submits(calls) if "arrayProperties" in s]
    terminated = [params["jobId"] for _, op, params in calls if op == "TerminateJob"]
    assert len(terminated) == 1 and terminated[0] != "twin-parent"
    assert ports().arrays.parent_of(made["jobName"]) == "twin-parent"
    assert {array for array, _ in claims(job_ids).values()} == {made["jobName"]}


def test_a_group_larger_than_max_size_makes_arrays_each_indexed_from_zero(aws) -> None:
    # Given 12 coalescible jobs of one route whose type's arrays hold at most 5, their wait over
    job_ids, messages, calls = due_jobs(aws, 12, max_size=5)

    # When the coalescer takes them in one batch
    assert coalesce(messages) == {"batchItemFailures": []}

    # Then arrays of 5, 5 and 2, and each job is the member at its own index of its own array:
    # the index its child gets from Batch (0..size-1) leads back to exactly that job
    sizes = sorted(s["arrayProperties"]["size"] for s in submits(calls))
    assert sizes == [2, 5, 5]
    book = ports().arrays
    for job_id, (name, index) in claims(job_ids).items():
        assert name is not None and index is not None
        member = book.member(name, index)
        assert member is not None and member.job_id == job_id


def test_two_invocations_resuming_one_array_at_once_submit_it_once(aws, monkeypatch) -> None:
    # Given an array whose coalescer died after its claims, before SubmitJob
    job_ids, messages, calls = due_jobs(aws, 8)
    batch = ports().batch
    _crash_in(monkeypatch, batch, "submit", after=False)
    with pytest.raises(Crash):
        coalesce(messages)
    monkeypatch.undo()
    # and its messages back in two halves (the sweeper's look-first messages, or a redelivery) that
    # two invocations take at once: the second runs while the first is about to submit
    later(VISIBILITY_TIMEOUT)
    first_half, second_half = redelivered(messages[:4]), redelivered(messages[4:])
    submitting = batch.submit
    second: list[dict[str, Any]] = []

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not second:
            second.append(coalesce(second_half))
        return submitting(*args, **kwargs)

    monkeypatch.setattr(batch, "submit", meanwhile)

    # When both resume the array
    first = coalesce(first_half)

    # Then it is submitted once, by the invocation holding its submission; nothing is terminated
    assert first == second[0] == {"batchItemFailures": []}
    [made] = submits(calls)
    assert made["arrayProperties"] == {"size": 8}
    assert [p for _, op, p in calls if op == "TerminateJob"] == []
    assert ports().arrays.parent_of(made["jobName"]) is not None
    assert {array for array, _ in claims(job_ids).values()} == {made["jobName"]}


def test_a_redelivered_message_whose_job_cannot_be_read_alone_is_retried(aws, monkeypatch) -> None:
    # Given an array submitted and recorded, and its batch delivered again
    job_ids = make_jobs(3)
    messages = array_messages(aws)
    later(31)
    coalesce(messages)
    store = ports().store
    reading = store.get
    unreadable = job_ids[1]

    def throttled(job_id: str) -> Any:
        if job_id == unreadable:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return reading(job_id)

    monkeypatch.setattr(store, "get", throttled)

    # When one job's read fails
    result = coalesce(redelivered(messages))

    # Then only its message is retried
    [failed] = [message_id for message_id, body, _ in messages if json.loads(body)["job_id"] == unreadable]
    assert result == {"batchItemFailures": [{"itemIdentifier": failed}]}


def test_a_resume_that_fails_midway_sends_no_job_of_its_batch_alone(aws, monkeypatch) -> None:
    # Given an array whose coalescer claimed all but one of its jobs and died before SubmitJob
    job_ids, messages, calls = due_jobs(aws, 3)
    book = ports().arrays
    claiming = book.claim
    last = sorted(job_ids)[-1]

    def last_not_claimed(job_id: str, *args: Any) -> Any:
        return Claim(ours=False) if job_id == last else claiming(job_id, *args)

    monkeypatch.setattr(book, "claim", last_not_claimed)
    _crash_in(monkeypatch, ports().batch, "submit", after=False)
    with pytest.raises(Crash):
        coalesce(messages)
    monkeypatch.undo()
    # and, at the redelivery, the array's resume failing after its claims (DynamoDB throttling)
    holding = book.hold_submission

    def throttled(*args: Any) -> bool:
        monkeypatch.setattr(book, "hold_submission", holding)
        raise RuntimeError("ProvisionedThroughputExceededException")

    monkeypatch.setattr(book, "hold_submission", throttled)

    # When the batch comes back: the unclaimed job's message would go the single-job way
    later(VISIBILITY_TIMEOUT)
    result = coalesce(redelivered(messages))

    # Then every message is retried and nothing is submitted, alone or in the array: the job the
    # failed resume claimed is not sent alone to be terminated at its record
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        m for m, _, _ in messages
    )
    assert submits(calls) == []
    # and the next delivery submits the array once, with all three
    later(2 * VISIBILITY_TIMEOUT)
    assert coalesce(redelivered(redelivered(messages))) == {"batchItemFailures": []}
    [made] = submits(calls)
    assert made["arrayProperties"] == {"size": 3}
    assert [p for _, op, p in calls if op == "TerminateJob"] == []


def test_jobs_that_name_different_parameters_go_in_different_arrays(aws) -> None:
    # Given a type whose optional chunk_mib has no default, and jobs that name it or leave it out
    wired = ports()
    kind = wired.policy.job_types[JOB_TYPE]
    optional = kind.parameters["chunk_mib"].model_copy(update={"default": None})
    kind = kind.model_copy(update={"parameters": {**kind.parameters, "chunk_mib": optional}})
    wired.policy = wired.policy.model_copy(update={"job_types": {**wired.policy.job_types, JOB_TYPE: kind}})
    named, left_out = [], []
    for n in range(6):
        parameters = {"input": tenant_input(f"checksum/file-{n:04d}.bin")}
        if n % 2:
            parameters["chunk_mib"] = "8"
        request = JobRequest(tenant="analytics", job_type=JOB_TYPE, parameters=parameters, array=True)
        (named if n % 2 else left_out).append(jobs.submit(wired, request).job.job_id)
    messages = array_messages(aws)
    later(31)
    calls = aws.record_calls("batch")

    # When the coalescer takes them in one batch
    assert coalesce(messages) == {"batchItemFailures": []}

    # Then two arrays: a child never runs with a value another job named (the parent's parameters
    # are the first member's; each line sets only the ones its job names)
    made = submits(calls)
    assert sorted(s["arrayProperties"]["size"] for s in made) == [3, 3]
    by_array: dict[str | None, set[str]] = {}
    for job_id, (name, _) in claims(named + left_out).items():
        by_array.setdefault(name, set()).add(job_id)
    assert sorted(by_array.values(), key=sorted) == sorted([set(named), set(left_out)], key=sorted)
    for submit in made:
        lines = manifest(aws, environment_of(submit)["BATCHPLANE_MANIFEST"])
        assert len({frozenset(line["parameters"]) for line in lines}) == 1
