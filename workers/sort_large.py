"""Sort the lines of an object in memory and write sorted.txt under the output prefix.

    python -m workers.sort_large --input s3://bucket/key --unique true|false [--working-set-mib N]

Lines are split on "\\n" and sorted by their bytes (as `LC_ALL=C sort`; `--unique true` as `sort -u`);
sorted.txt ends each line with "\\n". This is batchplane's memory-hungry example: besides the object
and its lines it holds a working set of WORKING_SET_MIB while it sorts (see below).
"""

from __future__ import annotations

import argparse

from workers.common import MIB, ArgumentParser, Job, S3Location, StepLog, run, whole_number

# The working set held while sorting, in MiB: a stand-in for the scratch memory of a real in-memory
# sort, allocated and written to (so the pages are really resident) before the input is read and kept
# until the output is written. 384 MiB is chosen against the sort-large job type (policy.yaml,
# template.yaml SortLargeJobDefinition): it alone is over the default 256 MiB, so the first attempt is
# OOM-killed, by real Batch and by the local Batch emulator alike (exit 137, "OutOfMemoryError:
# Container killed due to memory usage"); and with the interpreter and boto3 (about 66 MiB resident)
# it stays under 512 MiB, so batchplane's OUT_OF_MEMORY retry with twice the memory succeeds.
# Measured peak resident set: 450 MiB for an empty input, 476 MiB for 2 MiB of short lines (Python
# holds each line as an object, several times its text); from about 4 MiB of input on, 512 MiB is too
# little as well and the retry doubles again (1024 MiB), as the policy intends.
WORKING_SET_MIB = 384

log = StepLog("sort_large")


def parse_bool(text: str) -> bool:
    """argparse type of --unique: exactly "true" or "false", as the job type's parameter pattern says."""
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
    return text == "true"


def hold_working_set(mib: int) -> bytearray:
    """`mib` MiB, every byte written (one memset), so that the memory is resident and not merely reserved."""
    return bytearray(b"\xa5") * (mib * MIB)


def sort_lines(data: bytearray, *, unique: bool) -> tuple[bytes, int]:
    """The sorted text and its number of lines; a missing final newline is supplied, none is doubled."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the text ended with a newline (or was empty): no line after it
    lines.sort()
    if unique:  # sorted, equal lines are neighbours (bytearray lines are not hashable: no set())
        lines = [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]
    count = len(lines)
    if lines:
        lines.append(bytearray())
    return b"\n".join(lines), count


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m workers.sort_large", description="Sort the lines of an S3 object."
    )
    parser.add_input("a text object")
    parser.add_argument(
        "--unique",
        type=parse_bool,
        default=False,
        metavar="{true,false}",
        help="true: keep one of each line (default: false)",
    )
    parser.add_argument(
        "--working-set-mib",
        type=whole_number(0),
        metavar="MIB",
        default=WORKING_SET_MIB,
        help=f"MiB held while sorting (default: {WORKING_SET_MIB})",
    )
    return parser


def work(job: Job, arguments: argparse.Namespace) -> None:
    location: S3Location = arguments.input
    unique: bool = arguments.unique
    mib: int = arguments.working_set_mib
    log(f"working set {mib} MiB")
    working_set = hold_working_set(mib)
    data = job.open_input(location).read_all()
    text, count = sort_lines(data, unique=unique)
    del data
    log(f"sorted {count} {'unique ' if unique else ''}lines")
    job.write("sorted.txt", text, content_type="text/plain")
    log(f"released working set of {len(working_set) // MIB} MiB")
    del working_set


def main(argv: list[str] | None = None) -> int:
    return run(log, build_parser(), argv, work)


if __name__ == "__main__":
    raise SystemExit(main())
