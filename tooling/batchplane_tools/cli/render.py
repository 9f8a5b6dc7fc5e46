"""How jobs are shown: aligned tables, the `get` detail view, times, sizes, and `--json` output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from batchplane_tools.cli.client import Job


def print_json(doc: object) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False))


def cell(value: object, width: int | None = None) -> str:
    """A value as one table cell: `-` for nothing, on one line, cut to `width` characters."""
    if value is None or value == "":
        return "-"
    text = " ".join(str(value).split())
    if width is not None and len(text) > width:
        text = text[: max(width - 3, 1)] + "..."
    return text


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
        lines.append(indent + line.rstrip())
    return "\n".join(lines)


def when(value: object) -> str:
    """An ISO 8601 time, to the second, in UTC."""
    if not isinstance(value, str) or not value:
        return "-"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    """The time of day in UTC, for lines that tell when something was seen."""
    return datetime.now(UTC).strftime("%H:%M:%S")


def size(value: object) -> str:
    """A byte count for people: 512 B, 47.1 KiB, 1.0 GiB."""
    if not isinstance(value, int):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{value} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} B"  # pragma: no cover


def mib(value: object) -> str:
    return f"{value} MiB" if isinstance(value, int) else "-"


def dicts(items: Any) -> list[dict[str, Any]]:
    """The objects of a list in a job (attempts, history...), skipping anything that is not one."""
    return [item for item in items or [] if isinstance(item, dict)]


def last(items: object) -> dict[str, Any]:
    if isinstance(items, list) and items and isinstance(items[-1], dict):
        return items[-1]
    return {}


def _count(items: object) -> int:
    return len(items) if isinstance(items, list) else 0


def job_columns(job: Job) -> tuple[object, ...]:
    """What the `list` and `watch` tables start with: id, type, status, attempts, last capacity."""
    attempts = job.get("attempts")
    return (
        job.get("job_id"),
        job.get("job_type"),
        job.get("status"),
        _count(attempts),
        last(attempts).get("capacity"),
    )


def format_jobs(jobs: Sequence[Job], *, tenants: bool = False) -> str:
    """The `list` table: id, type, status, attempts, capacity of the last attempt, last update; with
    `tenants`, each job's tenant after its id."""
    rows = [(*job_columns(job), when(job.get("updated_at"))) for job in jobs]
    return table(
        *with_tenants(("JOB ID", "TYPE", "STATUS", "ATTEMPTS", "CAPACITY", "UPDATED"), rows, jobs, tenants)
    )


def with_tenants(
    headers: tuple[str, ...], rows: list[tuple[object, ...]], jobs: Sequence[Job], tenants: bool
) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    """The table with a TENANT column after the job's id, when it lists more than the caller's jobs."""
    if not tenants:
        return headers, rows
    return (
        (headers[0], "TENANT", *headers[1:]),
        [(row[0], job.get("tenant"), *row[1:]) for row, job in zip(rows, jobs, strict=True)],
    )


def format_job(job: Job) -> str:
    """The `get` summary: the job's fields, then its attempts, history and artifacts."""
    fields = _job_fields(job)
    width = max(len(name) for name, _ in fields)
    lines = [f"{name.ljust(width)}  {cell(value)}" for name, value in fields]
    attempts: list[tuple[object, ...]] = [
        (
            a.get("number"),
            a.get("capacity"),
            mib(a.get("memory_mib")),
            a.get("status"),
            a.get("failure_class"),
            a.get("exit_code"),
            dollars(a.get("cost_usd")),
            _array_place(a),
            a.get("status_reason"),
        )
        for a in dicts(job.get("attempts"))
    ]
    lines += _section(
        "attempts",
        ("#", "CAPACITY", "MEMORY", "STATUS", "FAILURE", "EXIT", "COST", "ARRAY", "REASON"),
        attempts,
    )
    history = [(when(h.get("at")), h.get("event"), h.get("reason")) for h in dicts(job.get("history"))]
    lines += _section("history", ("AT", "EVENT", "REASON"), history)
    artifacts = [(a.get("role"), a.get("uri"), size(a.get("size"))) for a in dicts(job.get("artifacts"))]
    lines += _section("artifacts", ("ROLE", "URI", "SIZE"), artifacts)
    logged = [a for a in dicts(job.get("attempts")) if a.get("log_stream")]
    if job.get("status") == "FAILED" and logged:
        # Why it failed is in the worker's own words: its output.
        lines += ["", f"its output: batchplane logs {job.get('job_id')} --attempt {logged[-1].get('number')}"]
    return "\n".join(lines)


def _array_place(attempt: dict[str, Any]) -> str | None:
    """An array child's place, `<array name>:<index>`; none for an attempt that ran alone."""
    name, index = attempt.get("array_name"), attempt.get("array_index")
    return f"{name}:{index}" if name and index is not None else None


def _job_fields(job: Job) -> list[tuple[str, object]]:
    """The head of the `get` summary: one named value a line."""
    parameters = job.get("parameters") or {}
    inputs = job.get("inputs") or []
    status = job.get("status")
    held = job.get("held_reason")
    return [
        ("job", job.get("job_id")),
        ("status", f"{status} ({held})" if status == "HELD" and held else status),
        ("type", job.get("job_type")),
        ("tenant", job.get("tenant")),
        ("resources", f"{cell(job.get('vcpus'))} vCPU, {mib(job.get('memory_mib'))}"),
        ("share", f"{job.get('share')} at priority {job.get('priority')}" if job.get("share") else None),
        (
            "parameters",
            ", ".join(f"{k}={v}" for k, v in parameters.items()) if isinstance(parameters, dict) else None,
        ),
        ("inputs", ", ".join(str(i) for i in inputs) if isinstance(inputs, list) else None),
        ("output", job.get("output_prefix")),
        ("created", when(job.get("created_at"))),
        ("updated", when(job.get("updated_at"))),
        *_waiting_fields(job.get("waiting")),
        ("cost", _cost(job.get("cost"))),
    ]


def _waiting_fields(waiting: object) -> list[tuple[str, object]]:
    """While the job waits in Batch: in which state since when and why, and its place in the queue."""
    if not isinstance(waiting, dict):
        return []
    reason = waiting.get("reason") or "Batch gave no reason"
    position = waiting.get("position")
    place = waiting.get("position_note")
    if isinstance(position, int):
        place = f"{position} in its queue (as of {when(waiting.get('position_as_of'))}; {place})"
    return [
        ("waiting", f"{waiting.get('status')} since {when(waiting.get('since'))}: {reason}"),
        ("position", place),
    ]


def dollars(value: object) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "-"


def _cost(cost: object) -> str | None:
    """`$total (successful $x, retries and fallbacks $y)`, estimated at the price table's rates."""
    if not isinstance(cost, dict):
        return None
    so_far = " so far" if cost.get("running") else ""
    return (
        f"{dollars(cost.get('total_usd'))}{so_far} "
        f"(successful attempt {dollars(cost.get('successful_usd'))}, "
        f"retries and fallbacks {dollars(cost.get('extra_usd'))}; estimated)"
    )


def format_usage(usage: dict[str, Any]) -> str:
    """The `usage` summary: totals by job type and outcome over the months, then month by month."""
    lines = [f"usage {usage.get('from')} .. {usage.get('to')}: {dollars(usage.get('total_usd'))} (estimated)"]
    rows = [
        (
            line.get("job_type"),
            line.get("outcome"),
            line.get("jobs"),
            dollars(line.get("cost_usd")),
            dollars(line.get("cost_per_job_usd")),
            dollars(line.get("extra_usd")),
        )
        for line in dicts(usage.get("by_job_type"))
    ]
    lines += _section(
        "by job type", ("TYPE", "OUTCOME", "JOBS", "COST", "PER JOB", "RETRIES+FALLBACKS"), rows
    )
    months = [
        (
            m.get("month"),
            dollars(m.get("spent_usd")),
            dollars(m.get("reserved_usd")),
            dollars(m.get("budget_usd")),
        )
        for m in dicts(usage.get("months"))
    ]
    lines += _section("months", ("MONTH", "SPENT", "RESERVED", "BUDGET"), months)
    return "\n".join(lines)


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A titled, counted table of the `get` summary, after a blank line; no table when empty."""
    lines = ["", f"{title} ({len(rows)})"]
    if rows:
        lines.append(table(headers, rows, "  "))
    return lines


def format_log_line(line: object) -> str:
    """One line of an attempt's log: its time (UTC, to the millisecond) and its message."""
    if not isinstance(line, dict):
        return cell(line)
    at = line.get("at")
    stamp = at[11:23] if isinstance(at, str) and len(at) >= 23 else "-"
    return f"{stamp}  {line.get('message', '')}"
