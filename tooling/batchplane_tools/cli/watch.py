"""The `watch` screen: a title, the count of jobs per status and their table, redrawn in place on a
terminal until Ctrl-C; elsewhere (a pipe, `--json`) one frame after another."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from batchplane_tools.cli.client import ApiClient, Page
from batchplane_tools.cli.errors import Unreachable
from batchplane_tools.cli.render import cell, dicts, job_columns, last, mib, now, table, with_tenants
from batchplane_tools.cli.statuses import STATUSES

CLEAR_SCREEN = "\x1b[2J"
HOME = "\x1b[H"
CLEAR_LINE = "\x1b[K"
CLEAR_BELOW = "\x1b[J"
HIDE_CURSOR = "\x1b[?25l"
SHOW_CURSOR = "\x1b[?25h"


def live(
    client: ApiClient, fetch: Callable[[], Page], *, interval: float, as_json: bool, all_tenants: bool = False
) -> int:
    """Show `fetch()`'s page every `interval` seconds until Ctrl-C, then exit 0. With `as_json`, each
    page is one line of JSON."""
    on_screen = sys.stdout.isatty() and not as_json
    if on_screen:
        sys.stdout.write(HIDE_CURSOR + CLEAR_SCREEN)
    try:
        while True:
            text = _next_frame(client, fetch, interval, as_json, all_tenants)
            if on_screen:
                _redraw(text)
            elif text:
                print(text + "\n", flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if on_screen:
            sys.stdout.write(SHOW_CURSOR + "\n")
            sys.stdout.flush()


def _next_frame(
    client: ApiClient, fetch: Callable[[], Page], interval: float, as_json: bool, all_tenants: bool
) -> str:
    """The frame to show next; with `as_json` the page is printed here and the frame is empty."""
    try:
        page = fetch()
    except Unreachable as error:  # keep watching through a restart of the stack
        if as_json:
            raise
        return f"{title(client, interval, all_tenants)}\n\n{error}"
    if as_json:
        print(json.dumps(page, ensure_ascii=False), flush=True)
        return ""
    return frame(client, page, interval=interval, all_tenants=all_tenants)


def _redraw(text: str) -> None:
    size = shutil.get_terminal_size()
    lines = [line[: size.columns] for line in text.splitlines()][: max(size.lines - 1, 1)]
    sys.stdout.write(HOME + "".join(line + CLEAR_LINE + "\n" for line in lines) + CLEAR_BELOW)
    sys.stdout.flush()


def title(client: ApiClient, interval: float | None, all_tenants: bool = False) -> str:
    parts = ["batchplane watch", client.base_url]
    if all_tenants:
        parts.append("all tenants, unfinished jobs")
    elif client.tenant:
        parts.append(f"tenant {client.tenant}")
    parts.append(f"{now()} UTC")
    if interval is not None:
        parts.append(f"every {interval:g} s, Ctrl-C quits")
    return "  ".join(parts)


def frame(client: ApiClient, page: Page, *, interval: float | None = None, all_tenants: bool = False) -> str:
    """One screen of `watch`: a title, the count per status, and the jobs' table."""
    jobs = dicts(page.get("jobs"))
    counts = Counter(str(j.get("status")) for j in jobs)
    order = {status: i for i, status in enumerate(STATUSES)}
    summary = "  ".join(f"{s} {n}" for s, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99)))
    shown = (
        f"{len(jobs)}+ jobs" if page.get("next_token") else f"{len(jobs)} job{'' if len(jobs) == 1 else 's'}"
    )
    lines = [title(client, interval, all_tenants), f"{shown}  ({summary})" if summary else shown, ""]
    if not jobs:
        lines.append("no jobs yet")
        return "\n".join(lines)
    rows = [
        (
            *job_columns(job),
            mib(last(job.get("attempts")).get("memory_mib", job.get("memory_mib"))),
            cell(_event_text(last(job.get("history"))), 80),
        )
        for job in jobs
    ]
    headers = ("JOB ID", "TYPE", "STATUS", "ATTEMPTS", "CAPACITY", "MEMORY", "LAST EVENT")
    lines.append(table(*with_tenants(headers, rows, jobs, all_tenants)))
    return "\n".join(lines)


def _event_text(entry: dict[str, Any]) -> str | None:
    if not entry:
        return None
    event, reason = entry.get("event"), entry.get("reason")
    return f"{event}: {reason}" if event and reason else (event or reason)
