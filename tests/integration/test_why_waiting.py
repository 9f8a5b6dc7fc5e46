"""GET /jobs/{job_id} says why a job waits in Batch and, while it is RUNNABLE, its place in its queue
(from the sweeper's latest GetJobQueueSnapshot of that queue)."""

from __future__ import annotations

from batchplane.models.waiting import QueueFront
from batchplane.wiring import ports
from tests.support import LambdaContext, load_event, load_function


def snapshots(monkeypatch, *ahead: str, including: list[str]) -> None:
    """Batch's snapshot of each queue: `ahead` then the jobs of `including`, as of now."""

    def front_of_queue(queue: str) -> QueueFront:
        return QueueFront(queue=queue, batch_job_ids=[*ahead, *including], as_of=ports().clock())

    monkeypatch.setattr(ports().batch, "front_of_queue", front_of_queue)


def sweep() -> None:
    load_function("sweeper").handler(load_event("schedule/sweep.json"), LambdaContext())


def test_a_submitted_job_waits_without_a_place_in_line(engine) -> None:
    # Given a job Batch accepted, not yet RUNNABLE
    job = engine.submit()

    # When it is read, Then it waits in SUBMITTED since its submission, with no position
    waiting = engine.get(job["job_id"])["waiting"]
    assert (waiting["status"], waiting["since"]) == ("SUBMITTED", job["attempts"][0]["submitted_at"])
    assert waiting["position"] is None
    assert waiting["position_note"] == "Batch places only RUNNABLE jobs in its queue order"


def test_a_runnable_job_shows_its_place_from_the_sweepers_snapshot(engine, monkeypatch) -> None:
    # Given a RUNNABLE job, second in its queue when the sweeper last looked
    job = engine.submit()
    engine.deliver("runnable", job)
    batch_job_id = job["attempts"][0]["batch_job_id"]
    snapshots(monkeypatch, "someone-else", including=[batch_job_id])

    # When the sweeper runs and the job is read
    sweep()
    waiting = engine.get(job["job_id"])["waiting"]

    # Then it waits in RUNNABLE, second in line as of the snapshot
    assert (waiting["status"], waiting["position"]) == ("RUNNABLE", 2)
    assert waiting["position_as_of"] is not None
    assert waiting["position_note"].startswith("among the first 100 RUNNABLE jobs")


def test_a_runnable_job_behind_the_first_hundred_is_said_to_be(engine, monkeypatch) -> None:
    # Given a RUNNABLE job behind 100 others in its queue
    job = engine.submit()
    engine.deliver("runnable", job)
    snapshots(monkeypatch, *(f"ahead-{n}" for n in range(100)), including=[])

    # When the sweeper runs and the job is read
    sweep()
    waiting = engine.get(job["job_id"])["waiting"]

    # Then it has no position, and the answer says why
    assert (waiting["status"], waiting["position"]) == ("RUNNABLE", None)
    assert waiting["position_note"] == "not in the first 100 RUNNABLE jobs of its queue"


def test_a_running_job_is_not_waiting(engine) -> None:
    job = engine.submit()
    for fixture in ("runnable", "starting", "running"):
        engine.deliver(fixture, job)

    assert engine.get(job["job_id"])["waiting"] is None
