"""Reviewer decisions from a spreadsheet: ``evla review --import FILE.csv``.

The file has the header ``id,decision,categories,note`` (categories separated by
``;``); each good row is recorded through the decision log like a decision typed at
the terminal, and each bad row is reported with its line number while the rest land.

What a hand-edited or exported spreadsheet can hold, and what happens to it:

* a huge cell (a 20 MB note): read whole (the csv module's 128 KB field limit is
  lifted for the file), then the row is refused by the note limit; later rows land;
* an unterminated quote: the csv module would read on to the next closing quote and
  swallow the rows in between into one note. A quoted field that spans a line which
  itself reads as a decision row (``ID,accept|reject,...``) is taken for that: the
  row with the open quote is reported and skipped, and reading resumes on the next
  line, so the swallowed rows land;
* NUL bytes: removed from the note (see ``core.decisions.clean_note``);
* a re-import of the same file: a row equal to the decision in force (same id,
  decision, categories, note and reviewer) appends nothing and counts as unchanged.
"""

from __future__ import annotations

import csv
import io
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlite_utils

from ..core.decisions import DECISIONS, default_reviewer, record_decision
from ..core.errors import BadInput
from ..core.records import arxiv_id_or_none

CSV_COLUMNS = ("id", "decision", "categories", "note")
LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")


@dataclass
class CsvImport:
    """What an import did: decisions appended, rows equal to the one in force, bad rows."""

    recorded: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)  # {"line": n, "reason": text}


class _Lines:
    """The file's physical lines for ``csv.reader``, which pulls one line at a time and
    reads no further than the record it is on: so reading can restart at any line."""

    def __init__(self, text: str):
        # only CR/LF end a CSV line (str.splitlines would also split at form feeds and U+2028)
        self.lines = LINE.findall(text)
        self.next = 0  # index of the next line to hand out

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.next >= len(self.lines):
            raise StopIteration
        self.next += 1
        return self.lines[self.next - 1]


def import_decisions_csv(
    db: sqlite_utils.Database,
    path_or_file: str | os.PathLike | IO[str],
    reviewer: str | None = None,
) -> CsvImport:
    """Record the decisions of a CSV file with header ``id,decision,categories,note``
    (categories separated by ``;``). Each good row lands even when others are bad.

    Line numbers in errors are the file's (the header is line 1). A missing file or a
    header without ``id`` and ``decision`` is an error for the whole file.
    """
    lines = _Lines(_read_text(path_or_file))
    result = CsvImport()
    with _no_field_limit(sum(len(line) for line in lines.lines) + 1):
        try:
            header = [name.strip().lower() for name in next(csv.reader(lines))]
        except StopIteration:
            header = []
        missing = [name for name in ("id", "decision") if name not in header]
        if missing:
            raise BadInput(
                f"decisions CSV needs the header {','.join(CSV_COLUMNS)} "
                f"(missing: {', '.join(missing)})"
            )
        reviewer = reviewer or default_reviewer()
        while lines.next < len(lines.lines):
            first = lines.next
            try:
                fields = next(csv.reader(lines))
            except StopIteration:
                break
            except csv.Error as exc:
                result.errors.append({"line": first + 1, "reason": f"unreadable CSV row: {exc}"})
                continue
            swallowed = _swallowed_row(lines.lines[first + 1 : lines.next])
            if swallowed is not None:
                result.errors.append(
                    {
                        "line": first + 1,
                        "reason": "unterminated quote: the field runs on into the row on line "
                        f"{first + 2 + swallowed}; row skipped",
                    }
                )
                lines.next = first + 1
                continue
            _import_row(db, header, fields, first + 1, reviewer, result)
    return result


def _read_text(path_or_file) -> str:
    if not isinstance(path_or_file, (str, os.PathLike)):
        return path_or_file.read()
    path = Path(path_or_file)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise BadInput(f"decisions file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text") from exc


@contextmanager
def _no_field_limit(size: int):
    """Let the csv module read a cell as big as the file (its default stops at 128 KB and
    would end the whole import); the limit is put back afterwards."""
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, size))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _swallowed_row(continuation: list[str]) -> int | None:
    """Index of the first continuation line of a multi-line record that reads as a decision
    row of its own (``ID,accept,...``): the sign of a quote that was never closed."""
    for index, line in enumerate(continuation):
        try:
            fields = next(csv.reader(io.StringIO(line)))
        except (StopIteration, csv.Error):
            continue
        if (
            len(fields) >= 2
            and arxiv_id_or_none(fields[0].strip()) is not None
            and fields[1].strip().lower() in DECISIONS
        ):
            return index
    return None


def _import_row(db, header, fields, record_line, reviewer, result: CsvImport) -> None:
    """Record one CSV record (``result`` counts it as recorded, unchanged or an error)."""
    if not any(field.strip() for field in fields):
        return
    if len(fields) > len(header):
        result.errors.append(
            {"line": record_line, "reason": f"{len(fields)} fields, expected {len(header)}"}
        )
        return
    row = dict(zip(header, fields, strict=False))
    categories = [c for c in (row.get("categories") or "").split(";") if c.strip()]
    try:
        outcome = record_decision(
            db,
            row.get("id") or "",
            row.get("decision") or "",
            categories,
            note=row.get("note"),
            reviewer=reviewer,
            unless_in_force=True,
        )
    except BadInput as exc:
        result.errors.append({"line": record_line, "reason": str(exc)})
        return
    if outcome["recorded"]:
        result.recorded += 1
    else:
        result.unchanged += 1
