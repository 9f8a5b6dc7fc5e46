"""What a bulk operation takes (lifecycle/bulk.py): a filter validated against the action, the
snapshot it keeps, and the cursor a call hands to the next (service/bulk.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from batchplane.errors import InvalidRequest
from batchplane.lifecycle.bulk import BulkAction, Selection, selection
from batchplane.models.job import HistoryEntry, Job, JobStatus
from batchplane.service.bulk import Cursor

AS_OF = datetime(2026, 11, 2, 12, tzinfo=UTC)


def job(status: JobStatus, *, created: datetime, updated: datetime | None = None, **fields: object) -> Job:
    return Job.model_validate(
        {
            "job_id": "j-1",
            "tenant": "analytics",
            "job_type": "word-count",
            "status": status,
            "parameters": {},
            "vcpus": 1,
            "memory_mib": 512,
            "capacity": "SPOT",
            "output_prefix": "s3://artifacts/outputs/analytics/j-1/",
            "created_at": created,
            "updated_at": updated or created,
            **fields,
        }
    )


def chosen(action: BulkAction, **filters: object) -> Selection:
    criteria: dict[str, object] = {
        "statuses": None,
        "job_type": None,
        "created_from": None,
        "created_to": None,
    }
    return selection(action, **{**criteria, **filters}, as_of=AS_OF)  # type: ignore[arg-type]


def fields_of(error: pytest.ExceptionInfo[InvalidRequest]) -> dict[str, str]:
    return {d.field: d.reason for d in error.value.details}


def test_no_status_means_every_status_the_action_can_change() -> None:
    assert chosen(BulkAction.RETRY).statuses == {JobStatus.FAILED, JobStatus.CANCELLED}
    cancellable = chosen(BulkAction.CANCEL).statuses
    assert JobStatus.RUNNING in cancellable and JobStatus.QUEUED in cancellable
    assert not any(status.is_terminal for status in cancellable)


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (BulkAction.RETRY, JobStatus.RUNNING),
        (BulkAction.RETRY, JobStatus.SUCCEEDED),
        (BulkAction.CANCEL, JobStatus.SUCCEEDED),
        (BulkAction.CANCEL, JobStatus.FAILED),
    ],
)
def test_a_status_the_action_cannot_change_is_refused_naming_it(
    action: BulkAction, status: JobStatus
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        chosen(
            action, statuses=[JobStatus.FAILED if action is BulkAction.RETRY else JobStatus.RUNNING, status]
        )

    assert status.value in fields_of(refused)["filter.status"]


def test_a_range_that_ends_before_it_starts_or_starts_after_now_is_refused() -> None:
    with pytest.raises(InvalidRequest) as backwards:
        chosen(
            BulkAction.CANCEL, created_from=AS_OF - timedelta(days=1), created_to=AS_OF - timedelta(days=2)
        )
    assert "before created_from" in fields_of(backwards)["filter.created_to"]

    with pytest.raises(InvalidRequest) as future:
        chosen(BulkAction.CANCEL, created_from=AS_OF + timedelta(seconds=1))
    assert "after now" in fields_of(future)["filter.created_from"]

    # a range that reaches past now is fine: it ends at the snapshot
    assert chosen(BulkAction.CANCEL, created_to=AS_OF + timedelta(days=9)).created_until == AS_OF


def test_a_job_is_taken_only_inside_the_range_type_and_snapshot() -> None:
    taken = chosen(
        BulkAction.CANCEL,
        job_type="word-count",
        created_from=AS_OF - timedelta(days=1),
        created_to=AS_OF - timedelta(hours=1),
    )
    inside = AS_OF - timedelta(hours=2)

    assert taken.selects(job(JobStatus.RUNNING, created=inside))
    assert taken.selects(job(JobStatus.RUNNING, created=AS_OF - timedelta(days=1)))  # both ends are inclusive
    assert taken.selects(job(JobStatus.RUNNING, created=AS_OF - timedelta(hours=1)))
    assert not taken.selects(job(JobStatus.RUNNING, created=AS_OF - timedelta(days=2)))
    assert not taken.selects(job(JobStatus.RUNNING, created=AS_OF - timedelta(minutes=30)))
    assert not taken.selects(job(JobStatus.RUNNING, created=inside, job_type="sort-large"))
    assert not taken.selects(job(JobStatus.CANCELLED, created=inside))


def test_a_retry_takes_only_jobs_finished_before_the_operation_began() -> None:
    # A job the operation retried that failed again has finished after as_of: not retried again
    created = AS_OF - timedelta(days=1)
    retry = chosen(BulkAction.RETRY)

    assert retry.selects(job(JobStatus.FAILED, created=created, updated=AS_OF - timedelta(seconds=1)))
    assert not retry.selects(job(JobStatus.FAILED, created=created, updated=AS_OF + timedelta(seconds=1)))


def test_a_cancel_leaves_alone_a_job_retried_by_hand_since_the_operation_began() -> None:
    created = AS_OF - timedelta(days=1)
    progressed = job(JobStatus.RUNNING, created=created, updated=AS_OF + timedelta(minutes=1))
    retried = job(
        JobStatus.QUEUED,
        created=created,
        history=[
            HistoryEntry(at=AS_OF + timedelta(minutes=1), event="retried", reason="manual retry by bob")
        ],
    )

    assert chosen(BulkAction.CANCEL).selects(progressed)  # progress is not a change of mind
    assert not chosen(BulkAction.CANCEL).selects(retried)


def test_the_operation_knows_the_jobs_it_changed_by_its_marker() -> None:
    retry = chosen(BulkAction.RETRY)
    entry = HistoryEntry(
        at=AS_OF + timedelta(seconds=5), event="retried", reason="manual retry by alice (bulk retry ab12)"
    )
    before = HistoryEntry(at=AS_OF - timedelta(seconds=5), event="retried", reason=entry.reason)
    created = AS_OF - timedelta(days=1)

    assert retry.acted_on(job(JobStatus.QUEUED, created=created, history=[entry]), "bulk retry ab12")
    assert not retry.acted_on(job(JobStatus.QUEUED, created=created, history=[entry]), "bulk retry cd34")
    assert not retry.acted_on(job(JobStatus.QUEUED, created=created, history=[before]), "bulk retry ab12")


def test_a_cursor_reads_back_as_it_was_and_a_forged_one_is_refused() -> None:
    cursor = Cursor(AS_OF, page=3, offset=7, position="eyJwIjowfQ==")
    assert Cursor.decode(cursor.encode()) == cursor

    for forged in (
        "not base64!",
        base64.urlsafe_b64encode(b'{"a": "x", "n": 1, "o": 0, "p": null}').decode(),
        base64.urlsafe_b64encode(b'{"a": "2026-11-02T12:00:00Z", "n": 0, "o": 0, "p": null}').decode(),
    ):
        with pytest.raises(InvalidRequest) as refused:
            Cursor.decode(forged)
        assert "next_token" in fields_of(refused)
