"""Reviewer decisions from a spreadsheet: ``evla review --import FILE.csv``.

The file has the header ``id,decision,categories,note`` (categories separated by
``;``); each good row is recorded through the decision log like a decision typed at
the terminal, and each bad row is reported with its line number while the rest land.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO

import sqlite_utils

from ..core.decisions import default_reviewer, record_decision
from ..core.errors import BadInput

CSV_COLUMNS = ("id", "decision", "categories", "note")


def import_decisions_csv(
    db: sqlite_utils.Database,
    path_or_file: str | os.PathLike | IO[str],
    reviewer: str | None = None,
) -> tuple[int, list[dict]]:
    """Record the decisions of a CSV file with header ``id,decision,categories,note``
    (categories separated by ``;``). Each good row lands even when others are bad.

    Returns ``(n_ok, errors)``; each error is ``{"line": n, "reason": text}`` with
    the file's line number (the header is line 1). A missing file or a header
    without ``id`` and ``decision`` is an error for the whole file.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        path = Path(path_or_file)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise BadInput(f"decisions file not found: {path}") from exc
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not UTF-8 text") from exc
        handle: IO[str] = io.StringIO(text, newline="")
    else:
        handle = path_or_file
    reader = csv.reader(handle)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        header = []
    missing = [name for name in ("id", "decision") if name not in header]
    if missing:
        raise BadInput(
            f"decisions CSV needs the header {','.join(CSV_COLUMNS)} (missing: "
            f"{', '.join(missing)})"
        )
    reviewer = reviewer or default_reviewer()
    n_ok = 0
    errors: list[dict] = []
    line = reader.line_num + 1  # where the next record starts (records may span lines)
    try:
        for fields in reader:
            n_ok += _import_row(db, header, fields, line, reviewer, errors)
            line = reader.line_num + 1
    except csv.Error as exc:  # e.g. a NUL byte: the rest of the file cannot be read
        errors.append({"line": line, "reason": f"unreadable CSV, rest of file skipped: {exc}"})
    return n_ok, errors


def _import_row(db, header, fields, record_line, reviewer, errors) -> int:
    """Record one CSV record; returns 1 when it landed, 0 when skipped or bad (``errors`` grows)."""
    if not any(field.strip() for field in fields):
        return 0
    if len(fields) > len(header):
        errors.append(
            {"line": record_line, "reason": f"{len(fields)} fields, expected {len(header)}"}
        )
        return 0
    row = dict(zip(header, fields, strict=False))
    categories = [c for c in (row.get("categories") or "").split(";") if c.strip()]
    try:
        record_decision(
            db,
            row.get("id") or "",
            row.get("decision") or "",
            categories,
            note=(row.get("note") or "").strip() or None,
            reviewer=reviewer,
        )
    except BadInput as exc:
        errors.append({"line": record_line, "reason": str(exc)})
        return 0
    return 1
