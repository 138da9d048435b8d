"""JSON-lines files (the arXiv snapshot format, seeds, training streams), plain or gzipped.

One reader for every place that takes such a file, so each treats a bad line the same
way: ``iter_jsonl`` yields every non-blank line with its number, its parsed value or a
one-line reason it could not be parsed (invalid JSON, not UTF-8, nested too deeply for
the parser), and its size in bytes (for progress by bytes read). Callers decide what a
bad line means: the snapshot import reports and skips it, the seed loader stops.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from .errors import BadInput


@dataclass
class JsonLine:
    """One non-blank line of a JSON-lines file."""

    number: int  # 1-based line number in the file
    value: object  # the parsed JSON value (any JSON type); None when ``error`` is set
    error: str | None  # why the line could not be parsed, in a few words
    size: int  # bytes the line took, newline included


def open_binary(path: str | os.PathLike) -> tuple[IO[bytes], int | None]:
    """A binary handle on ``path`` (``-`` = standard input; ``.gz`` is decompressed) and its
    size in bytes when that is known up front (plain files only)."""
    if str(path) == "-":
        return sys.stdin.buffer, None
    path = Path(path)
    try:
        if path.suffix == ".gz":
            # GzipFile is a binary file object, but typeshed does not declare it an IO[bytes]
            return cast(IO[bytes], gzip.open(path, "rb")), None
        return open(path, "rb"), os.path.getsize(path)
    except FileNotFoundError as exc:
        raise BadInput(f"file not found: {path}") from exc


def parse_line(raw: bytes) -> tuple[object, str | None]:
    """``(value, None)`` or ``(None, reason)`` for one line's bytes."""
    try:
        return json.loads(raw), None
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"


def iter_lines(handle: IO[bytes], first_number: int = 1) -> Iterator[JsonLine]:
    """The non-blank lines of ``handle``; ``first_number`` is the number of the line the
    handle is positioned at (a reader resuming mid-file seeks, then passes it)."""
    for number, raw in enumerate(handle, start=first_number):
        if not raw.strip():
            continue
        value, error = parse_line(raw)
        yield JsonLine(number, value, error, len(raw))


def iter_jsonl(path: str | os.PathLike) -> Iterator[JsonLine]:
    """Every non-blank line of a JSON-lines file, parsed; bad lines carry their reason."""
    handle, _ = open_binary(path)
    try:
        yield from iter_lines(handle)
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every object of a file the project ships (seeds, training streams): a bad line is an
    error naming the file and the line."""
    records = []
    for line in iter_jsonl(path):
        if line.error or not isinstance(line.value, dict):
            raise BadInput(f"{path}:{line.number}: {line.error or 'not a JSON object'}")
        records.append(line.value)
    return records
