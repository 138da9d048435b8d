"""PDFs generated with PyMuPDF for the PDF-stage tests: they run everywhere and
show exactly the layout or defect under test (no copyrighted files needed)."""

from __future__ import annotations

import io

import pymupdf

WIDTH, HEIGHT = 612, 792
LEFT = (54, 298)  # x range of the left column of a two-column page
RIGHT = (314, 558)


def write_lines(
    page, x: float, y: float, lines: list[str], size: float = 9, leading: float = 11
) -> float:
    """Insert lines top-down starting at baseline y; returns the next free baseline."""
    for line in lines:
        page.insert_text((x, y), line, fontsize=size)
        y += leading
    return y


def paper_pdf(
    body_pages: int = 2,
    references: list[str] | None = None,
    heading: str | None = "References",
    appendix: str | None = "A Proofs of the Lemmas",
    hanging_indent: bool = False,
) -> bytes:
    """A one-column paper: title, Abstract, numbered sections, a reference list, an appendix."""
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    y = write_lines(page, 72, 80, ["Efficient Tokens for Vision-Language-Action Models"], size=14)
    y = write_lines(page, 72, y + 20, ["Abstract"], size=11)
    y = write_lines(
        page, 72, y + 6, ["We study token pruning for robot policies and report what it costs."]
    )
    sections = ["1 Introduction", "2 Method", "3 Experiments", "4 Conclusion"]
    per_page = max(1, len(sections) // body_pages)
    for index, title in enumerate(sections):
        if index and index % per_page == 0 and doc.page_count < body_pages:
            page = doc.new_page(width=WIDTH, height=HEIGHT)
            y = 80
        y = write_lines(page, 72, y + 24, [title], size=11)
        y = write_lines(
            page,
            72,
            y + 6,
            [f"Body text of section {index + 1} with a citation [1] inside it."] * 3,
        )
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    y = 80
    if heading:
        y = write_lines(page, 72, y, [heading], size=11) + 12
    for entry in references or []:
        first, *rest = entry.split("\n")
        y = write_lines(page, 72, y, [first])
        if rest:
            y = write_lines(page, 84 if hanging_indent else 72, y, rest)
        y += 4
    if appendix:
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        y = write_lines(page, 72, 80, [appendix], size=11)
        write_lines(page, 72, y + 12, ["Lemma 1 holds because every token is counted once [1]."])
    return doc.tobytes()


def two_column_pdf(
    left: list[str], right: list[str], title: str = "A Two Column Paper About Robots"
) -> bytes:
    """A title across the page, then two columns; the right column is drawn FIRST so
    the content stream order is not the reading order."""
    doc = pymupdf.open()
    page = doc.new_page(width=WIDTH, height=HEIGHT)
    page.insert_text((150, 70), title, fontsize=14)
    write_lines(page, RIGHT[0], 110, right)
    write_lines(page, LEFT[0], 110, left)
    return doc.tobytes()


def image_only_pdf(pages: int = 2) -> bytes:
    doc = pymupdf.open()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 200), False)
    pix.clear_with(200)
    for _ in range(pages):
        page = doc.new_page(width=WIDTH, height=HEIGHT)
        page.insert_image(pymupdf.Rect(72, 72, 400, 400), pixmap=pix)
    return doc.tobytes()


def encrypted_pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret text")
    out = io.BytesIO()
    doc.save(out, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    return out.getvalue()


def many_pages_pdf(pages: int) -> bytes:
    doc = pymupdf.open()
    for number in range(pages):
        doc.new_page().insert_text(
            (72, 72), f"Page {number + 1} of a very long document with text."
        )
    return doc.tobytes()


HTML_ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>403 Forbidden</title></head>
<body><h1>Access denied</h1><p>Too many requests from your address.</p></body></html>
"""
