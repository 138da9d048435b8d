"""Cells for files that other tools open: CSV for spreadsheets, Markdown for GitHub.

Titles, notes and reasons come from arXiv, PDFs and citation services, so they are
hostile input. Every CSV and every Markdown file the tool writes passes its cells
through here, so one place decides what "inert" means:

* CSV (OWASP "CSV injection"): a text cell starting with ``= + - @``, a tab or a
  carriage return is read as a formula by Excel, LibreOffice and Google Sheets
  (``=HYPERLINK(...)`` phones home, ``=cmd|...`` runs programs). Such a cell gets a
  leading ``'``, which spreadsheets show as text and drop from the value. Numbers
  are written as numbers (a negative score stays ``-0.5``). A carriage return inside
  a cell becomes a newline, so the writer quotes the cell instead of leaving a bare
  ``\r`` that readers take for the end of the row.
* Markdown: GitHub renders some inline HTML, so ``<``, ``>`` and ``&`` in text become
  entities, and the characters that would end a table cell or a link (``| [ ] \\``)
  are backslash-escaped. Link targets are percent-encoded where they could close
  the link or open a tag.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO
from urllib.parse import quote

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MARKDOWN_ESCAPES = (
    ("&", "&amp;"),  # first, so the entities below are not escaped twice
    ("<", "&lt;"),
    (">", "&gt;"),
    ("\\", "\\\\"),
    ("|", "\\|"),
    ("[", "\\["),
    ("]", "\\]"),
)
URL_SAFE = ":/?#@!$&*+,;=%~-._"  # RFC 3986 characters that cannot end a Markdown link


def csv_cell(value):
    """A value a spreadsheet shows as written: text that would start a formula gets a ``'``."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_STARTS):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def write_csv(
    handle: IO[str], fieldnames: Iterable[str], rows: Iterable[dict], lineterminator: str = "\n"
) -> None:
    """A header and ``rows`` (extra keys ignored) with every cell through ``csv_cell``."""
    fieldnames = list(fieldnames)
    writer = csv.DictWriter(
        handle, fieldnames=fieldnames, extrasaction="ignore", lineterminator=lineterminator
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({name: csv_cell(row.get(name)) for name in fieldnames})


def md_text(text: str | None) -> str:
    """Text for a Markdown table cell, list item or link label: no HTML, no cell breaks."""
    out = " ".join((text or "").split())  # a newline would end the table row
    for raw, escaped in MARKDOWN_ESCAPES:
        out = out.replace(raw, escaped)
    return out


def md_url(url: str) -> str:
    """A link target that cannot close the link or start a tag (``) < > "`` and spaces
    are percent-encoded; what is already percent-encoded stays as it is)."""
    return quote(url, safe=URL_SAFE)
