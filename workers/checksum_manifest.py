"""Write a SHA-256 manifest of an object, chunk by chunk, as manifest.json under the output prefix.

    python -m workers.checksum_manifest --input s3://bucket/key --chunk-mib N

The object is streamed once; memory stays at a piece (1 MiB) whatever the chunk size. manifest.json:
{"input": uri, "size": n, "sha256": hex of the whole object, "chunk_size": bytes,
 "chunks": [{"offset": n, "size": n, "sha256": hex}, ...], ...the job's identity}. The last chunk may be
short; an empty object has no chunks.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterable

from workers.common import MIB, ArgumentParser, Job, S3Location, StepLog, run, whole_number

log = StepLog("checksum_manifest")


def manifest_chunks(pieces: Iterable[bytes], chunk_size: int) -> tuple[str, list[dict[str, object]]]:
    """The whole stream's SHA-256 and one entry per chunk of `chunk_size` bytes, pieces cut where needed."""
    whole = hashlib.sha256()
    chunks: list[dict[str, object]] = []
    chunk = hashlib.sha256()
    chunk_offset = 0
    filled = 0

    def close_chunk() -> None:
        nonlocal chunk, chunk_offset, filled
        digest = chunk.hexdigest()
        chunks.append({"offset": chunk_offset, "size": filled, "sha256": digest})
        log(f"chunk {len(chunks)}: offset {chunk_offset}, {filled} bytes, sha256 {digest}")
        chunk, chunk_offset, filled = hashlib.sha256(), chunk_offset + filled, 0

    for piece in pieces:
        whole.update(piece)
        view = memoryview(piece)
        while view:
            taken = view[: chunk_size - filled]
            chunk.update(taken)
            filled += len(taken)
            view = view[len(taken) :]
            if filled == chunk_size:
                close_chunk()
    if filled:
        close_chunk()
    return whole.hexdigest(), chunks


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m workers.checksum_manifest",
        description="Write a chunked SHA-256 manifest of an S3 object.",
    )
    parser.add_input("any object")
    parser.add_argument(
        "--chunk-mib", type=whole_number(1), default=64, metavar="MIB", help="chunk size in MiB (default: 64)"
    )
    return parser


def work(job: Job, arguments: argparse.Namespace) -> None:
    location: S3Location = arguments.input
    chunk_size: int = arguments.chunk_mib * MIB
    source = job.open_input(location)
    sha256, chunks = manifest_chunks(source.pieces(), chunk_size)
    log(f"sha256 {sha256} over {len(chunks)} chunks")
    job.write_json(
        "manifest.json",
        {
            "input": location.uri,
            "size": source.size,
            "sha256": sha256,
            "chunk_size": chunk_size,
            "chunks": chunks,
        },
    )


def main(argv: list[str] | None = None) -> int:
    return run(log, build_parser(), argv, work)


if __name__ == "__main__":
    raise SystemExit(main())
