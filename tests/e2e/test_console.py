"""The web console in a real headless browser (Debian's chromium, driven by Playwright) against the
real local stack: load it, filter, open a job that fell back from Spot, see both attempts and the
reason. The screenshot is kept under .ci-artifacts/ (the path is printed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchplane_tools.paths import ROOT
from tests.e2e.conftest import Local, start_local

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / ".ci-artifacts" / "console.png"
JOBS_SCREENSHOT = ROOT / ".ci-artifacts" / "console-jobs.png"


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """Every Spot job reclaimed at once, so sort-large falls back to on-demand."""
    yield from start_local(
        tmp_path_factory.mktemp("console"),
        "--workers",
        "2",
        "--spot-interruption-rate",
        "1",
        "--spot-interruption-after",
        "0.05",
        "--seed",
        "7",
        "--sweep-interval",
        "3600",
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (.ci/run installs it with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def _submit(local: Local, job_type: str, uri: str, **extra: Any) -> dict[str, Any]:
    status, job = local.request(
        "POST", "/jobs", {"job_type": job_type, "parameters": {"input": uri}, **extra}
    )
    assert status == 202, job
    return job  # type: ignore[no-any-return]


def test_the_console_shows_a_job_that_fell_back_from_spot_with_both_attempts_and_the_reason(
    chaos: Local, browser: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a sort-large job that was reclaimed on Spot and succeeded on demand, and a word-count job
    key = "incoming/local/manual/console.txt"
    chaos.client("s3").put_object(Bucket=chaos.info["ingest_bucket"], Key=key, Body=b"b\na\n")
    uri = f"s3://{chaos.info['ingest_bucket']}/{key}"
    fell_back = _submit(chaos, "sort-large", uri, memory_mib=1024)
    counted = _submit(chaos, "word-count", uri)
    assert chaos.finished(fell_back["job_id"], timeout=45)["status"] == "SUCCEEDED"

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # When the console is loaded, both jobs are listed, and the summary counts the fallback
    page.goto(chaos.info["console_url"])
    rows = page.locator("#jobs tbody tr")
    page.locator(f'tr[data-job-id="{counted["job_id"]}"]').wait_for()
    page.locator(f'tr[data-job-id="{fell_back["job_id"]}"]').wait_for()
    page.locator('#summary [data-count="spot_fallbacks"] b', has_text="1").wait_for()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(JOBS_SCREENSHOT), full_page=True)

    # When it is filtered to sort-large, Then only that job is left (without reloading the page)
    page.select_option("#filter-type", "sort-large")
    page.locator(f'tr[data-job-id="{fell_back["job_id"]}"]').wait_for()
    page.locator(f'tr[data-job-id="{counted["job_id"]}"]').wait_for(state="detached")
    assert rows.count() == 1

    # And a job submitted meanwhile appears by itself (live updates)
    later = _submit(chaos, "sort-large", uri, memory_mib=1024)
    page.locator(f'tr[data-job-id="{later["job_id"]}"]').wait_for()

    # When the job that fell back is opened
    page.click(f'tr[data-job-id="{fell_back["job_id"]}"] a')
    first = page.locator('.attempt[data-attempt="1"]')
    second = page.locator('.attempt[data-attempt="2"]')
    second.wait_for()

    # Then both attempts show their queue, capacity, memory and failure class, and the decision's reason
    assert "SPOT_INTERRUPTED" in first.inner_text()
    assert "SPOT" in first.locator(".facts").inner_text()
    assert "1024 MiB" in first.inner_text()
    reason = first.locator(".decision.retried .reason").inner_text()
    assert reason.startswith("attempt 1 reclaimed on Spot (Host EC2 (instance i-")
    assert reason.endswith("retrying on ON_DEMAND in 0 s")
    assert "moving from SPOT to ON_DEMAND" in first.locator(".decision.fell_back").inner_text()
    assert "ON_DEMAND" in second.locator(".facts").inner_text()
    assert "SUCCEEDED" in second.inner_text()
    assert first.locator(".track .running").count() == 1
    assert page.locator('a[href^="#/lineage?uri="]').count() >= 2  # its input and its output
    # And the log pane shows the latest attempt's log, read from its stream (the local CloudWatch Logs)
    page.locator("#log-where", has_text="/aws/batch/job/").wait_for()
    assert "log unavailable" not in page.locator("#log").inner_text()
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    with capsys.disabled():  # in the test output, passed or not: CI keeps the files as artifacts
        print(f"\nconsole screenshots: {JOBS_SCREENSHOT} {SCREENSHOT}")
    assert errors == []
