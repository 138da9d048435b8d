"""PDF text with PyMuPDF: full text in reading order, sections, and the reference list.

Pure functions over bytes or paths (no database), so they run unchanged in the
process pool of ``evla_miner.pdfs`` and in the stateless ``evla refs`` command.

Why blocks and not ``page.get_text()``: the block list costs the same to
extract and keeps each block's position, which gives three things plain text
cannot: two-column pages put back into reading order, headings recognised as
short blocks of their own, and the hanging indent that separates author-year
references (the first line of an entry starts at the column edge, its
continuation lines are indented). Font sizes would find headings more surely
but ``get_text("dict")`` is several times slower.

Every failure a real PDF can cause (encrypted, corrupt, truncated, not a PDF at
all, image-only, too many pages, too slow) becomes a ``PdfError`` whose message
is one line, so a batch run records it and goes on.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pymupdf

from ..core.errors import BadInput, one_line

# MuPDF prints recoverable syntax errors of real-world PDFs on stderr; they are
# not ours to show (a broken file still raises, and we turn that into PdfError).
pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)

DEFAULT_MAX_PAGES = 300
DEFAULT_TIME_LIMIT = 60.0  # seconds per PDF
MIN_TEXT_CHARS_PER_PAGE = 20  # below this on average a PDF has no usable text layer
MAGIC_WINDOW = 1024  # the PDF spec allows junk before %PDF- within the first 1 KB
EOF_WINDOW = 4096  # %%EOF may be followed by a little junk
# The flags plain ``get_text()`` uses (no image blocks: we only want text, so the
# block list costs what plain text costs), except that MuPDF expands ligatures:
# TeX fonts give "ﬁ", "ﬃ" as single glyphs and titles must compare as letters.
BLOCK_FLAGS = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES
BAND_GAP = 24.0  # points of empty page height that separate two-column bands


class PdfError(BadInput):
    """A PDF that cannot be read; the message is one line saying why."""


@dataclass(slots=True)
class Line:
    """One text line in reading order.

    ``indent`` is the distance of the line's block from the left edge of its
    column on that page (what tells a hanging indent); ``block_start`` marks the
    first line of a PyMuPDF block.
    """

    page: int  # 1-based
    text: str
    indent: float = 0.0
    block_start: bool = True
    start: int = 0  # offset of the line in the full text


@dataclass(slots=True)
class Block:
    """A text block in reading order, its lines joined by newlines."""

    page: int
    indent: float
    text: str
    start: int  # offset in the full text


_LINE_BREAKS = re.compile(r"[ \t\r]*\n\s*")


def _lines(blocks: list[Block]) -> list[Line]:
    """The lines of some blocks, each knowing its block's indent and whether it opens the block."""
    lines = []
    for block in blocks:
        offset = block.start
        first = True
        for text in block.text.split("\n"):
            lines.append(Line(block.page, text, block.indent, first, offset))
            offset += len(text) + 1
            first = False
    return lines


_HEADING_SHAPE = re.compile(
    r"(?:\d{1,2}|[IVX]{1,5}|[A-H])\.?(?:\s+[A-Z]|$)"
    r"|(?:Appendix|APPENDIX|Abstract|ABSTRACT)"
    r"|[A-Z][A-Za-z' -]{2,60}[.:]?$"
)


def _heading_candidates(blocks: list[Block]) -> list[Line]:
    """The first line of every block (plus its second line, for "A" / "Hyperparameters"
    headings and to tell a heading that fills its block from a paragraph's first line)."""
    lines = []
    for block in blocks:
        first, _, rest = block.text.partition("\n")
        # Cheap filter first (one regex per block): a heading is short and is a
        # number/letter + capitalised title, or capitalised words only.
        if len(first) > 80 or not _HEADING_SHAPE.match(first):
            continue
        lines.append(Line(block.page, first, block.indent, True, block.start))
        if rest:
            lines.append(
                Line(
                    block.page,
                    rest.partition("\n")[0],
                    block.indent,
                    False,
                    block.start + len(first) + 1,
                )
            )
    return lines


@dataclass
class Document:
    """What the pipeline keeps of a PDF."""

    pages: int
    text: str
    blocks: list[Block]
    sections: list[dict] = field(default_factory=list)  # {name, heading, page, start, end}
    reference_lines: list[Line] = field(default_factory=list)
    reference_source: str = "none"  # heading | numbered-list | none

    def section_text(self, name: str) -> str:
        """The text of every section called ``name`` (e.g. "introduction"), joined."""
        return "\n".join(
            self.text[s["start"] : s["end"]] for s in self.sections if s["name"] == name
        )

    @property
    def references_text(self) -> str:
        return "\n".join(line.text for line in self.reference_lines)


# --- opening -----------------------------------------------------------------------


def _read_source(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise PdfError(f"cannot read {source}: {exc.strerror or exc}") from exc


def sniff_not_pdf(head: bytes) -> str | None:
    """Why these first bytes are not a PDF, or None when they start like one."""
    window = head[:MAGIC_WINDOW]
    if b"%PDF-" in window:
        return None
    lowered = window.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return "not a PDF: an HTML/XML page"
    if not window:
        return "not a PDF: empty file"
    return "not a PDF: no %PDF header"


def open_pdf(source, max_pages: int = DEFAULT_MAX_PAGES) -> pymupdf.Document:
    """Open a PDF from bytes or a path, refusing what cannot be a readable paper."""
    data = _read_source(source)
    reason = sniff_not_pdf(data)
    if reason:
        raise PdfError(reason)
    if b"%%EOF" not in data[-EOF_WINDOW:]:
        # MuPDF would "repair" it and show whatever pages survive, silently
        # losing the end of the paper, which is where the references are.
        raise PdfError("truncated PDF: no %%EOF marker at the end (incomplete download?)")
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as exc:  # MuPDF raises FileDataError, RuntimeError, ValueError...
        raise PdfError(f"corrupt PDF: {one_line(exc)}") from exc
    if doc.needs_pass:
        doc.close()
        raise PdfError("encrypted PDF: a password is needed to open it")
    if doc.page_count == 0:
        doc.close()
        raise PdfError("corrupt PDF: no pages")
    if max_pages and doc.page_count > max_pages:
        count = doc.page_count
        doc.close()
        raise PdfError(f"too many pages: {count} > limit {max_pages}")
    return doc


# --- reading order -----------------------------------------------------------------


def _page_lines(page) -> list[tuple[int, float, float, str, float, float, float]]:
    """Blocks of one page in reading order: (column, x0, y0, text, x1, y1, height).

    A page is read as two columns when both halves carry a good share of the
    text in blocks that stay on their side of the middle; full-width blocks
    (titles, wide figures) cut the page into bands read top to bottom, each
    band left column first. One-column pages keep MuPDF's own order.
    """
    textpage = page.get_textpage(flags=BLOCK_FLAGS)
    blocks = [b for b in textpage.extractBLOCKS() if b[4].strip()]
    if not blocks:
        return []
    rect = textpage.rect  # page.rect would cost two more MuPDF calls per page
    width = rect.width
    mid = rect.x0 + width / 2
    slack = width * 0.02
    left_chars = right_chars = total = 0
    sides = []
    for b in blocks:
        n = len(b[4])
        total += n
        if b[2] <= mid + slack:
            side = 0
            left_chars += n
        elif b[0] >= mid - slack:
            side = 1
            right_chars += n
        else:
            side = -1
        sides.append(side)
    two_column = left_chars > 0.2 * total and right_chars > 0.2 * total
    height = rect.height
    if not two_column:
        return [(0, b[0], b[1], b[4], b[2], b[3], height) for b in blocks]

    ordered = []
    band: list[tuple] = []
    band_bottom = None

    def flush_band():
        band.sort(key=lambda item: (item[0], item[2]))
        ordered.extend(band)
        band.clear()

    for side, b in sorted(zip(sides, blocks, strict=True), key=lambda item: item[1][1]):
        if side == -1:
            flush_band()
            ordered.append((0, b[0], b[1], b[4], b[2], b[3], height))
            band_bottom = b[3]
            continue
        if band_bottom is not None and b[1] > band_bottom + BAND_GAP:
            # Nothing on the page at all across this gap: what follows is a new
            # band (REVTeX's balanced reference list below the acknowledgments).
            flush_band()
        band.append((side, b[0], b[1], b[4], b[2], b[3], height))
        band_bottom = b[3] if band_bottom is None else max(band_bottom, b[3])
    flush_band()
    return ordered


MARGIN = 60.0  # points: running heads and page numbers live this close to the page edge


def _in_margin(y0: float, y1: float, height: float) -> bool:
    return y1 <= MARGIN or y0 >= height - MARGIN


def _furniture_key(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.split()))


def _is_furniture(text: str, repeated: set[str]) -> bool:
    """Of a block in the margin: a page number or a running head ("Published as a conference paper
    at ICLR 2021")."""
    stripped = text.strip()
    return stripped.isdigit() or len(stripped) < 4 or _furniture_key(stripped) in repeated


# --- headings ----------------------------------------------------------------------

CANONICAL = {
    "abstract": "abstract",
    "introduction": "introduction",
    "related work": "related_work",
    "related works": "related_work",
    "background": "background",
    "preliminaries": "background",
    "method": "method",
    "methods": "method",
    "methodology": "method",
    "approach": "method",
    "our approach": "method",
    "experiments": "experiments",
    "experiment": "experiments",
    "experimental setup": "experiments",
    "experimental results": "experiments",
    "evaluation": "experiments",
    "results": "results",
    "discussion": "discussion",
    "conclusion": "conclusion",
    "conclusions": "conclusion",
    "conclusion and future work": "conclusion",
    "conclusions and future work": "conclusion",
    "summary": "conclusion",
    "limitations": "limitations",
    "acknowledgments": "acknowledgments",
    "acknowledgements": "acknowledgments",
    "acknowledgment": "acknowledgments",
    "acknowledgement": "acknowledgments",
    "references": "references",
    "bibliography": "references",
    "literature cited": "references",
    "references and notes": "references",
    "appendix": "appendix",
    "appendices": "appendix",
    "supplementary material": "appendix",
    "supplementary materials": "appendix",
    "supplemental material": "appendix",
    "supplementary": "appendix",
    "checklist": "appendix",
    "about the author": "about_authors",
    "about the authors": "about_authors",
    "author biographies": "about_authors",
}

_NUMBER = r"(?:\d{1,2}|[IVX]{1,5})"
NUMBERED_HEADING = re.compile(rf"^(?P<num>{_NUMBER})\.?\s+(?P<title>[A-Z][^\n]{{1,70}})$")
LETTERED_HEADING = re.compile(
    r"^(?:Appendix\s+)?(?P<num>[A-H])(?:\.|:|\s)\s*(?P<title>[A-Z][^\n]{1,70})$"
)
APPENDIX_ALONE = re.compile(r"^(?:Appendix|APPENDIX)(?:\s+[A-Z0-9])?\s*[:.]?\s*(?P<title>.*)$")
ABSTRACT_RUN_IN = re.compile(r"^(?:Abstract|ABSTRACT)\s*[—–:.\-]\s*\S")
BARE_NUMBER = re.compile(rf"^(?:{_NUMBER}|[A-H])\.?$")
ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}


BODY_ENDS = ("appendix", "references", "conclusion", "discussion", "acknowledgments", "limitations")


_NOT_LOWER_ALPHA = re.compile(r"[^a-z ]+")


def _canonical(title: str) -> str | None:
    key = title.lower()
    if key in CANONICAL:
        return CANONICAL[key]
    return CANONICAL.get(" ".join(_NOT_LOWER_ALPHA.sub("", key).split()))


def _title_like(title: str) -> bool:
    """A heading title: short, no sentence punctuation, not a formula or table row."""
    if len(title) > 70 or title.endswith((".", ",", ";", ":")) and not title.endswith("..."):
        return False
    if any(ch in title for ch in "=,;()[]{}<>|") or "  " in title:
        return False
    words = title.split()
    if not 1 <= len(words) <= 10:
        return False
    letters = sum(ch.isalpha() for ch in title)
    return letters >= 0.7 * len(title.replace(" ", ""))


def classify_heading(text: str) -> tuple[str, str, str | None] | None:
    """``(kind, name, number)`` when a line is a section heading.

    kind: ``canonical`` (a known section name, numbered or not), ``numbered``
    (``3 Our Model``), ``lettered`` (``A Proofs``, appendix style) or
    ``abstract-run-in`` (``Abstract—We ...``).
    """
    text = text.strip()
    if not text or len(text) > 80 or not (text[0].isupper() or text[0].isdigit()):
        return None
    match = NUMBERED_HEADING.match(text)
    if match and _title_like(match.group("title")):
        canonical = _canonical(match.group("title"))
        if canonical:
            return "canonical", canonical, match.group("num")
        return "numbered", match.group("title").strip().lower(), match.group("num")
    canonical = _canonical(text)
    if canonical:
        return "canonical", canonical, None
    match = LETTERED_HEADING.match(text)
    if match and _title_like(match.group("title")):
        return "lettered", match.group("title").strip().lower(), match.group("num")
    match = APPENDIX_ALONE.match(text)
    if match and (not match.group("title") or _title_like(match.group("title"))):
        return "canonical", "appendix", None
    if ABSTRACT_RUN_IN.match(text):
        return "abstract-run-in", "abstract", None
    return None


def _number_value(num: str | None) -> int | None:
    if num is None:
        return None
    if num.isdigit():
        return int(num)
    return ROMAN.get(num)


def find_sections(lines: list[Line], text_length: int) -> list[dict]:
    """Split the document at its headings.

    Only the first line of a block can be a heading (a heading is its own
    block, or opens one as in "References" followed by the first entry). A
    numbered heading counts only when its number follows the previous one
    (1, 2, 3 ...), which keeps table rows and list items out. Inside the
    references only appendix-like headings count: a reference entry can look
    like a heading, an appendix heading cannot look like a reference.
    """
    sections: list[dict] = []
    last_number = 0
    in_references = False
    for index, line in enumerate(lines):
        if not line.block_start:
            continue
        text = line.text.strip()
        # "A" / "3" alone on a line, title on the next line of the same block.
        if BARE_NUMBER.match(text) and index + 1 < len(lines) and not lines[index + 1].block_start:
            text = f"{text} {lines[index + 1].text.strip()}"
        found = classify_heading(text)
        if not found:
            continue
        kind, name, number = found
        whole_block = (
            index + 1 >= len(lines) or lines[index + 1].block_start or text != line.text.strip()
        )
        if kind in ("numbered", "lettered") and not whole_block:
            continue
        if in_references and not (
            kind == "lettered" or name in ("appendix", "acknowledgments", "about_authors")
        ):
            continue
        if kind == "numbered":
            value = _number_value(number)
            if value is None or value != last_number + 1:
                continue
        if kind in ("numbered", "canonical") and number is not None:
            value = _number_value(number)
            if value is not None:
                last_number = value
        if kind == "lettered":
            # "A. Ordered Phase" is a subsection in REVTeX and "A Survey ..." a
            # title: a lettered heading is an appendix only once the body is over.
            if not (in_references or (sections and sections[-1]["name"] in BODY_ENDS)):
                continue
            name = "appendix"
        if (
            kind == "canonical"
            and name not in ("appendix", "references")
            and any(s["name"] == name for s in sections)
        ):
            continue  # a second "Methods" is a table header, not a section
        if sections and sections[-1]["name"] == "appendix" and name != "references":
            # Everything after the appendix starts is appendix (its sub-headings too).
            continue
        sections.append({"name": name, "heading": text, "page": line.page, "start": line.start})
        in_references = name == "references"
    for i, section in enumerate(sections):
        section["end"] = sections[i + 1]["start"] if i + 1 < len(sections) else text_length
    if sections and sections[0]["start"] > 0:
        sections.insert(
            0, {"name": "front", "heading": "", "page": 1, "start": 0, "end": sections[0]["start"]}
        )
    return sections


# --- reference region without a heading --------------------------------------------

LIST_MARKERS = (
    re.compile(r"^\[(\d{1,3})\]"),
    re.compile(r"^(\d{1,3})\.\s+\S"),
    re.compile(r"^(\d{1,3})\s+[A-Z\u00c0-\u024f]"),
    re.compile(r"^\((\d{1,3})\)\s*\S"),
)
MIN_HEADLESS_ENTRIES = 5


def numbered_run(lines: list[Line], pattern: re.Pattern, start: int = 0) -> list[int]:
    """Indexes of the lines that open entries 1, 2, 3 ... from ``start`` on.

    A bracketed list may skip a number or two (an entry lost to extraction);
    bare numbers must follow exactly, since "80 144415 (2009)" can open a line.
    """
    loose = pattern.pattern.startswith("^\\[")
    found: list[int] = []
    last = 0
    for index in range(start, len(lines)):
        match = pattern.match(lines[index].text)
        if not match:
            continue
        value = int(match.group(1))
        if value == last + 1 or (loose and last < value <= last + 3 and found):
            found.append(index)
            last = value
    return found


def find_headless_references(lines: list[Line]) -> int | None:
    """Where a numbered reference list starts in a document without a "References" heading.

    Tries every line that opens entry 1 and keeps the longest run 1, 2, 3 ...
    to the end of the document (the last one on ties: reference lists come last).
    """
    best: tuple[int, int] | None = None
    for pattern in LIST_MARKERS:
        for index, line in enumerate(lines):
            match = pattern.match(line.text)
            if not match or match.group(1) != "1":
                continue
            run = numbered_run(lines, pattern, index)
            if len(run) >= MIN_HEADLESS_ENTRIES and (best is None or len(run) >= best[0]):
                best = (len(run), index)
    return best[1] if best else None


# --- the document ------------------------------------------------------------------


def extract_document(
    source,
    max_pages: int = DEFAULT_MAX_PAGES,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
) -> Document:
    """Read a PDF (bytes or path) into text, lines, sections and the reference lines.

    Raises ``PdfError`` (one line) for unreadable input, image-only PDFs, more
    than ``max_pages`` pages, or when extraction takes over ``time_limit``
    seconds (checked between pages).
    """
    started = time.monotonic()
    doc = open_pdf(source, max_pages=max_pages)
    try:
        raw_pages = []
        # pymupdf.Document iterates through __getitem__; its annotations declare no __iter__
        for number, page in enumerate(doc, start=1):  # type: ignore[arg-type,var-annotated]
            try:
                raw_pages.append(_page_lines(page))
            except Exception as exc:
                raise PdfError(f"corrupt PDF: page {number}: {one_line(exc)}") from exc
            if time_limit and time.monotonic() - started > time_limit:
                raise PdfError(
                    f"time limit of {time_limit:g} s exceeded at page {number} of {doc.page_count}"
                )
        page_count = doc.page_count
    except PdfError:
        raise
    except Exception as exc:  # truncated files fail while loading pages
        raise PdfError(f"corrupt PDF: {one_line(exc)}") from exc
    finally:
        doc.close()

    margin_pages: dict[str, set[int]] = {}
    for number, blocks in enumerate(raw_pages, start=1):
        if not blocks:
            continue
        for _column, _x0, y0, text, _x1, y1, height in blocks:
            if _in_margin(y0, y1, height):
                margin_pages.setdefault(_furniture_key(text), set()).add(number)
    repeated = {
        key
        for key, pages in margin_pages.items()
        if len(pages) >= min(3, max(2, len(raw_pages) // 2))
    }

    # Work per block, not per line: a page has ~30 blocks but ~130 lines, and
    # Python per line would cost more than MuPDF's extraction. Lines are only
    # materialised for heading candidates and the reference region.
    blocks_out: list[Block] = []
    parts: list[str] = []
    offset = 0
    for number, blocks in enumerate(raw_pages, start=1):
        if not blocks:
            continue
        column_left: dict[int, float] = {}
        for column, x0, _y0, _text, x1, _y1, _height in blocks:
            if x1 - x0 > 30:  # ignore tiny blocks (page numbers) when finding the column edge
                column_left[column] = min(column_left.get(column, x0), x0)
        for column, x0, y0, text, _x1, y1, height in blocks:
            if _in_margin(y0, y1, height) and _is_furniture(text, repeated):
                continue
            clean = text.strip()
            if " \n" in clean or "\n " in clean or "\n\n" in clean or "\t" in clean:
                clean = _LINE_BREAKS.sub("\n", clean)
            if not clean:
                continue
            blocks_out.append(Block(number, x0 - column_left.get(column, x0), clean, offset))
            parts.append(clean)
            offset += len(clean) + 1
    text = "\n".join(parts)
    if len(text) < MIN_TEXT_CHARS_PER_PAGE * page_count:
        raise PdfError(
            f"no text layer: {len(text)} characters in {page_count} pages (image-only or scanned "
            "PDF?)"
        )

    sections = find_sections(_heading_candidates(blocks_out), len(text))
    reference_lines: list[Line] = []
    source_kind = "none"
    ref_sections = [s for s in sections if s["name"] == "references"]
    if ref_sections:
        section = ref_sections[-1]
        reference_lines = _lines(
            [b for b in blocks_out if section["start"] <= b.start < section["end"]]
        )
        if reference_lines:
            # Drop the heading itself, keep an entry sharing its block.
            head = reference_lines[0]
            if _canonical(head.text) == "references":
                reference_lines = reference_lines[1:]
                if reference_lines and not reference_lines[0].block_start:
                    reference_lines[0] = Line(
                        head.page,
                        reference_lines[0].text,
                        head.indent,
                        True,
                        reference_lines[0].start,
                    )
        source_kind = "heading"
    if not reference_lines:
        lines = _lines(blocks_out)
        start = find_headless_references(lines)
        if start is not None:
            end_offset = next(
                (
                    s["start"]
                    for s in sections
                    if s["name"] == "appendix" and s["start"] > lines[start].start
                ),
                len(text),
            )
            reference_lines = [line for line in lines[start:] if line.start < end_offset]
            source_kind = "numbered-list"
            sections = _insert_section(sections, "references", "", lines[start], end_offset)
    return Document(page_count, text, blocks_out, sections, reference_lines, source_kind)


def _insert_section(
    sections: list[dict], name: str, heading: str, line: Line, end: int
) -> list[dict]:
    """Add a section found without a heading, cutting the one it falls in."""
    result = []
    for section in sections:
        if section["start"] < line.start < section["end"]:
            result.append({**section, "end": line.start})
            result.append(
                {
                    "name": name,
                    "heading": heading,
                    "page": line.page,
                    "start": line.start,
                    "end": end,
                }
            )
            if end < section["end"]:
                result.append({**section, "start": end})
        else:
            result.append(section)
    if not sections:
        result = [
            {"name": "front", "heading": "", "page": 1, "start": 0, "end": line.start},
            {"name": name, "heading": heading, "page": line.page, "start": line.start, "end": end},
        ]
    return result


def extract_text(
    source, max_pages: int = DEFAULT_MAX_PAGES, time_limit: float | None = DEFAULT_TIME_LIMIT
) -> str:
    """The full text of a PDF in reading order."""
    return extract_document(source, max_pages=max_pages, time_limit=time_limit).text
