"""Count the words and/or lines of a text object and write counts.json under the output prefix.

    python -m workers.word_count --input s3://bucket/key --mode words|lines|both

The object is streamed, never held whole. Counting follows `wc` in the C locale: a word is a run of
bytes other than ASCII whitespace, and a last line without a final newline still counts as a line.
counts.json: {"input": uri, "mode": mode, "lines": n, "words": n, "bytes": n, ...the job's identity};
a count the mode did not ask for is left out.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from workers.common import ArgumentParser, Job, S3Location, StepLog, run

MODES = ("words", "lines", "both")

log = StepLog("word_count")


@dataclass
class Counts:
    """Running counts over a stream fed piece by piece; a word or line cut by a piece boundary counts once."""

    count_words: bool = True
    count_lines: bool = True
    size: int = 0
    words: int = 0
    newlines: int = 0
    _in_word: bool = False
    _ends_with_newline: bool = True

    def feed(self, piece: bytes) -> None:
        if not piece:
            return
        self.size += len(piece)
        if self.count_lines:
            self.newlines += piece.count(b"\n")
            self._ends_with_newline = piece.endswith(b"\n")
        if self.count_words:
            words = len(piece.split())
            if self._in_word and not piece[:1].isspace():
                words -= 1  # the previous piece ended inside this word
            self.words += words
            self._in_word = not piece[-1:].isspace()

    @property
    def lines(self) -> int:
        return self.newlines + (0 if self._ends_with_newline else 1)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m workers.word_count", description="Count the words and/or lines of an S3 object."
    )
    parser.add_input("a text object")
    parser.add_argument("--mode", choices=MODES, default="both", help="what to count (default: both)")
    return parser


def work(job: Job, arguments: argparse.Namespace) -> None:
    location: S3Location = arguments.input
    mode: str = arguments.mode
    counts = Counts(count_words=mode in ("words", "both"), count_lines=mode in ("lines", "both"))
    for piece in job.open_input(location).pieces():
        counts.feed(piece)
    document: dict[str, object] = {"input": location.uri, "mode": mode}
    if counts.count_lines:
        document["lines"] = counts.lines
    if counts.count_words:
        document["words"] = counts.words
    document["bytes"] = counts.size
    counted = (f"{name} {document[name]}" for name in ("lines", "words", "bytes") if name in document)
    log(f"counted {', '.join(counted)}")
    job.write_json("counts.json", document)


def main(argv: list[str] | None = None) -> int:
    return run(log, build_parser(), argv, work)


if __name__ == "__main__":
    raise SystemExit(main())
