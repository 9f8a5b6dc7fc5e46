"""GET /jobs/{job_id}/attempts/{attempt}/log on moto: the attempt's awslogs stream, recorded from its
Batch events, read from CloudWatch Logs page by page, within the tenant's own jobs."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from batchplane.models.time import from_epoch_ms, to_iso
from tests.support import api_event

LOG_GROUP = "/aws/batch/job"  # awslogs' default on Batch: the template's job definitions set no group
RESOURCE = "/jobs/{job_id}/attempts/{attempt}/log"


def _log(api: Any, job_id: str, attempt: int = 1, tenant: str = "analytics", **query: str) -> tuple[int, Any]:
    status, body, _ = api(
        api_event(
            "GET",
            f"/jobs/{job_id}/attempts/{attempt}/log",
            resource=RESOURCE,
            tenant=tenant,
            query=query or None,
        )
    )
    return status, body


def _stream_of(job: dict[str, Any]) -> str:
    stream = job["attempts"][-1]["log_stream"]
    assert stream, "the RUNNING event records the attempt's log stream"
    return str(stream)


def _write(aws: Any, stream: str, messages: list[str], first_ms: int | None = None) -> None:
    """Lines written now (CloudWatch Logs takes no event older than 14 days), a millisecond apart."""
    first_ms = first_ms or int(time.time() * 1000)
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": first_ms + i, "message": m} for i, m in enumerate(messages)],
    )


def test_a_failed_attempts_log_reads_page_by_page_to_its_end(aws, api, engine) -> None:
    # Given a job whose attempt ran, wrote three lines to its awslogs stream and failed for good
    job = engine.submit("word-count")
    for fixture in ("runnable", "starting", "running", "application_error"):
        engine.deliver(fixture, job)
    stream = _stream_of(engine.get(job["job_id"]))  # as the terminal event names it
    written_ms = int(time.time() * 1000)
    _write(
        aws,
        stream,
        ["reading input", "Traceback (most recent call last):", "ValueError: bad row 7"],
        written_ms,
    )

    # When the caller reads the log two lines at a time
    status, first = _log(api, job["job_id"], limit="2")
    assert status == 200, first
    status, second = _log(api, job["job_id"], limit="2", next_token=first["next_token"])
    assert status == 200, second
    pages = [first, second]
    while pages[-1]["next_token"] is not None:
        status, page = _log(api, job["job_id"], limit="2", next_token=pages[-1]["next_token"])
        assert status == 200, page
        pages.append(page)

    # Then every line comes once, in order, with its time, and the where names the log group and stream
    assert set(first) == {"job_id", "attempt", "where", "lines", "next_token"}
    assert (first["job_id"], first["attempt"], first["where"]) == (job["job_id"], 1, f"{LOG_GROUP}/{stream}")
    assert [line["message"] for page in pages for line in page["lines"]] == [
        "reading input",
        "Traceback (most recent call last):",
        "ValueError: bad row 7",
    ]
    assert first["lines"][0]["at"] == to_iso(from_epoch_ms(written_ms))
    assert pages[-1]["lines"] == [] and len(pages) <= 3


def test_a_running_attempts_last_page_keeps_a_token_for_the_lines_to_come(aws, api, engine) -> None:
    # Given a running attempt that has written one line
    job = engine.submit("word-count")
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, job)
    stream = _stream_of(engine.get(job["job_id"]))
    _write(aws, stream, ["started"])
    _, first = _log(api, job["job_id"])
    _, caught_up = _log(api, job["job_id"], next_token=first["next_token"])

    # When it writes another line, and the caller asks again with the token of its last page
    _write(aws, stream, ["halfway"], first_ms=int(time.time() * 1000) + 1000)
    status, later = _log(api, job["job_id"], next_token=caught_up["next_token"])

    # Then the caught-up page was empty but kept a token, and the next one holds just the new line
    assert caught_up["lines"] == [] and caught_up["next_token"] is not None
    assert status == 200
    assert [line["message"] for line in later["lines"]] == ["halfway"]


@pytest.mark.parametrize(
    ("attempt", "field"),
    [(2, "attempt"), (1, "log")],
)
def test_an_attempt_that_does_not_exist_or_has_no_log_is_404_naming_the_field(
    api, engine, attempt: int, field: str
) -> None:
    # Given a job whose first attempt is submitted to Batch but has not run (no log stream yet)
    job = engine.submit("word-count")

    # When the caller asks for attempt 2's log, or attempt 1's
    status, body = _log(api, job["job_id"], attempt=attempt)

    # Then 404 names the field that does not exist
    assert status == 404, body
    assert [d["field"] for d in body["error"]["details"]] == [field]


def test_a_log_stream_not_written_yet_is_404_naming_the_log(api, engine) -> None:
    # Given a running attempt whose stream awslogs has not created yet
    job = engine.submit("word-count")
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, job)

    # When the caller asks for its log
    status, body = _log(api, job["job_id"])

    # Then 404, naming the log
    assert status == 404, body
    assert [d["field"] for d in body["error"]["details"]] == ["log"]


def test_another_tenants_job_log_and_token_are_refused(aws, api, engine) -> None:
    # Given analytics's job with a log
    job = engine.submit("word-count")
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, job)
    _write(aws, _stream_of(engine.get(job["job_id"])), ["secret line"])
    _, page = _log(api, job["job_id"], limit="1")

    # When another tenant asks for it, or carries analytics's token to attempt 2's listing
    status, other = _log(api, job["job_id"], tenant="intruder")
    moved_status, moved = _log(api, job["job_id"], attempt=2, next_token=page["next_token"])

    # Then the job does not exist for the other tenant, and the token is not that listing's
    assert status == 404 and "secret" not in str(other)
    assert [d["field"] for d in other["error"]["details"]] == ["job_id"]
    assert moved_status == 422 and [d["field"] for d in moved["error"]["details"]] == ["next_token"]


def test_the_log_group_read_is_the_one_the_templates_job_definitions_write() -> None:
    # Given the template's job definitions and the API's settings default
    from batchplane.settings import Settings
    from batchplane_tools.local.template import load_template
    from tests.support import TEMPLATE

    template = load_template(TEMPLATE)
    definitions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Batch::JobDefinition"]

    # Then each writes with awslogs to Batch's default group (none names another), the group the API reads
    assert definitions
    for definition in definitions:
        logging = definition["Properties"]["ContainerProperties"]["LogConfiguration"]
        assert logging["LogDriver"] == "awslogs"
        assert logging.get("Options", {}).get("awslogs-group", LOG_GROUP) == LOG_GROUP
    assert Settings.model_fields["JOB_LOG_GROUP"].default == LOG_GROUP


def test_an_operator_reads_another_tenants_log_by_naming_its_tenant(aws, api, engine) -> None:
    # Given analytics's job with a log, and `local`, an operator in policy.yaml's api.operators
    job = engine.submit("word-count")
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, job)
    _write(aws, _stream_of(engine.get(job["job_id"])), ["operator line"])

    # When the operator names analytics, and another tenant (no operator) names it too
    path = f"/jobs/{job['job_id']}/attempts/1/log"
    named = {"tenant": "analytics"}
    status, page, _ = api(api_event("GET", path, resource=RESOURCE, tenant="local", query=named))
    refused, body, _ = api(api_event("GET", path, resource=RESOURCE, tenant="intruder", query=named))

    # Then the operator reads the log, as the console's log pane does; the other caller is refused
    assert status == 200 and [line["message"] for line in page["lines"]] == ["operator line"]
    assert refused == 403 and [d["field"] for d in body["error"]["details"]] == ["tenant"]
